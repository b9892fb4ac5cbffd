"""Whether the Hugging Face Hub can be reached, told in seconds.

Offline, the Hub client retries for about a minute before it gives up, and its error then reads like a
missing file. Weights (``backbones``) and datasets (``data.sources``) both ask here first: the
``HF_HUB_OFFLINE`` setting, else one quick request without retries. Only a failure to connect means
offline; any HTTP answer (401, 404, gated) means the Hub is there and the download itself will say what is
wrong.
"""

from __future__ import annotations

import os

__all__ = ["PROBE_TIMEOUT_S", "is_offline_error", "offline_by_setting", "unreachable"]

PROBE_TIMEOUT_S = 5.0  # one request to tell "offline" from "slow"; a blackholed network costs this much
# Exception class names (anywhere in the chain) meaning the Hub cannot be reached at all; by name because
# huggingface_hub and its HTTP client moved these classes between versions.
OFFLINE_KINDS = frozenset(
    {
        "OfflineModeIsEnabled",
        "LocalEntryNotFoundError",
        "ConnectError",
        "ConnectTimeout",
        "ConnectionError",
        "ProxyError",
        "NetworkError",
        "TimeoutException",
        "gaierror",
        "TimeoutError",
    }
)


def offline_by_setting() -> bool:
    """``HF_HUB_OFFLINE`` is set: in huggingface_hub's constants, or in the environment since it was
    imported (it reads the variable once, at import)."""
    from huggingface_hub import constants

    value = os.environ.get("HF_HUB_OFFLINE", "")
    return bool(constants.is_offline_mode()) or value.strip().upper() in ("1", "ON", "YES", "TRUE")


def is_offline_error(exc: BaseException | None) -> bool:
    """True when ``exc`` (or an exception it wraps) says the Hub could not be reached at all."""
    for _ in range(8):  # the Hub wraps the transport's error, which wraps the socket's
        if exc is None:
            return False
        if {cls.__name__ for cls in type(exc).__mro__} & OFFLINE_KINDS:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def unreachable(hub: object, url: str) -> BaseException | None:
    """The connection error of one quick request for ``url`` (``hub`` is the ``huggingface_hub`` module,
    passed so tests can patch it), or None when the Hub answers, whatever the answer."""
    try:
        hub.get_hf_file_metadata(url, timeout=PROBE_TIMEOUT_S)  # type: ignore[attr-defined]
    except Exception as exc:  # HTTP errors of every kind, which all mean the Hub is reachable
        if is_offline_error(exc):
            return exc
    return None
