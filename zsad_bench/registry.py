"""Typed registries of models, datasets and protocols, filled lazily from entry points.

Built-ins register through the entry-point groups ``zsad_bench.models``, ``zsad_bench.datasets`` and
``zsad_bench.protocols`` in ``pyproject.toml`` -- the same route a third-party distribution uses. An
entry is a ``"module:attr"`` string until it is first used, so listing never imports torch.
"""

from __future__ import annotations

import difflib
import importlib
import warnings
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Generic, TypeVar

from zsad_bench.errors import ZsadError

__all__ = ["DATASETS", "MODELS", "PROTOCOLS", "Entry", "Registry", "canonical_name"]

T = TypeVar("T")

BUILTIN_DISTRIBUTION = "zsad-bench"


def canonical_name(name: str) -> str:
    """Registry names are lower-kebab: ``CLIP_AC`` and ``clip-ac`` name the same entry."""
    return name.strip().lower().replace("_", "-")


@dataclass(frozen=True)
class Entry:
    """One registered name: where it points and which distribution provides it."""

    name: str
    target: str
    source: str

    @property
    def builtin(self) -> bool:
        return self.source == BUILTIN_DISTRIBUTION


class Registry(Generic[T]):
    """Name -> object, discovered from one entry-point group on first use.

    ``get`` imports the target and caches it. A name claimed twice keeps the built-in (or the first
    plugin) and warns; an unknown name raises ``ZsadError`` with the closest matches.
    """

    def __init__(self, kind: str, group: str) -> None:
        self.kind = kind
        self.group = group
        self._entries: dict[str, Entry] | None = None
        self._loaded: dict[str, T] = {}

    # -- discovery ----------------------------------------------------------------------------
    def _discover(self) -> dict[str, Entry]:
        if self._entries is None:
            found: dict[str, Entry] = {}
            for ep in metadata.entry_points(group=self.group):
                dist = ep.dist.name if ep.dist is not None else "unknown"
                self._add(found, Entry(canonical_name(ep.name), ep.value, dist))
            self._entries = found
        return self._entries

    def _add(self, found: dict[str, Entry], entry: Entry) -> None:
        current = found.get(entry.name)
        if current is None or current == entry:
            found[entry.name] = entry
            return
        keep, drop = (entry, current) if entry.builtin and not current.builtin else (current, entry)
        warnings.warn(
            f"{self.kind} '{entry.name}' is registered by both {keep.source} ({keep.target}) and "
            f"{drop.source} ({drop.target}); keeping {keep.source}'s",
            stacklevel=3,
        )
        found[entry.name] = keep

    def register(self, name: str, obj: T | str, source: str = "runtime") -> None:
        """Register an object (or a ``"module:attr"`` string) without an entry point."""
        name = canonical_name(name)
        target = obj if isinstance(obj, str) else f"<object {name}>"
        entries = self._discover()
        before = entries.get(name)
        self._add(entries, Entry(name, target, source))
        if entries[name] != before and not isinstance(obj, str):
            self._loaded[name] = obj

    # -- lookup -------------------------------------------------------------------------------
    def names(self) -> list[str]:
        return sorted(self._discover())

    def entries(self) -> list[Entry]:
        return [self._discover()[n] for n in self.names()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and canonical_name(name) in self._discover()

    def entry(self, name: str) -> Entry:
        key = canonical_name(name)
        entries = self._discover()
        if key not in entries:
            close = difflib.get_close_matches(key, list(entries), n=3, cutoff=0.5)
            hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
            raise ZsadError(
                f"unknown {self.kind} '{name}'; {hint}known: {', '.join(sorted(entries)) or 'none'}"
            )
        return entries[key]

    def get(self, name: str) -> T:
        entry = self.entry(name)
        if entry.name not in self._loaded:
            self._loaded[entry.name] = _import_target(entry, self.kind)
        return self._loaded[entry.name]

    def reset(self) -> None:
        """Forget what was discovered (tests that install a plugin at run time call this)."""
        self._entries = None
        self._loaded.clear()


def _import_target(entry: Entry, kind: str) -> Any:
    module_name, _, attr = entry.target.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split(".") if attr else []:
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ZsadError(
            f"{kind} '{entry.name}' from {entry.source} points at {entry.target}, which cannot be "
            f"imported ({exc}); reinstall {entry.source}"
        ) from exc
    return obj


MODELS: Registry[Any] = Registry("model", "zsad_bench.models")
DATASETS: Registry[Any] = Registry("dataset", "zsad_bench.datasets")
PROTOCOLS: Registry[Any] = Registry("protocol", "zsad_bench.protocols")
