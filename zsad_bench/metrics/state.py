"""The accumulator base: each accumulator declares its state once; ``to``, ``merge`` and ``reset`` follow.

As torchmetrics' ``Metric.add_state``: a piece of state is a name, a default and how two shards of it
combine, one of

- ``cat``: a list that ``update`` appends one chunk to (never a ``torch.cat`` per update, so many small
  updates cost what one big one does); ``merge`` puts the other shard's chunks after these, ``compute``
  concatenates once (``concatenated``). Chunks are tensors, or plain numbers kept alongside them.
- ``sum``: a count, or a fixed-size tensor such as a histogram; ``None`` stands for "no tensor yet" so the
  first ``update`` decides its device.
- ``merge``: another accumulator (a composition of accumulators), combined, moved and reset by its own
  methods.

``settings`` names the attributes two shards must agree on to be merged (an FPR limit, histogram bins).

``update`` is append-only and keeps the caller's tensors by reference, never a copy: it does only
Python-level checks (dims, shape, dtype), and everything that launches a kernel (value checks, dtype
conversion, NaN checks) runs once, on the concatenated state. As in torchmetrics, the caller must
therefore not modify a tensor in place after passing it to ``update`` (nothing detects it: ``compute``
would see the new values); a caller that reuses a buffer passes ``buffer.clone()``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, TypeVar

import torch
from torch import Tensor

__all__ = ["Accumulator", "Reduction"]

Reduction = Literal["cat", "sum", "merge"]
Self = TypeVar("Self", bound="Accumulator")


class Accumulator:
    """Base of the metric accumulators: declared state with generic ``to`` / ``merge`` / ``reset``.

    A subclass calls ``add_state`` in ``__init__`` for every piece of state, makes ``update`` check
    attributes and append (``cat``) or add (``accumulate``), and ``compute`` call a pure function on the
    ``concatenated`` state. ``check`` is a hook for invariants a merge could break.
    """

    settings: tuple[str, ...] = ()

    def __init__(self) -> None:
        self._reductions: dict[str, Reduction] = {}
        self._defaults: dict[str, Any] = {}

    def add_state(self, name: str, default: Any, reduce: Reduction) -> None:
        """Declare ``name``: ``cat`` with default ``[]``; ``sum`` with a number, a tensor or ``None``;
        ``merge`` with an accumulator (its current state is the default ``reset`` returns to: empty)."""
        if reduce == "cat" and default != []:
            raise ValueError(f"state {name!r}: a 'cat' state starts as [], got {default!r}")
        if reduce == "sum" and not (default is None or isinstance(default, (int, float, Tensor))):
            raise ValueError(f"state {name!r}: a 'sum' state is a number, a tensor or None")
        if reduce == "merge" and not isinstance(default, Accumulator):
            raise ValueError(f"state {name!r}: a 'merge' state is an Accumulator")
        if reduce not in ("cat", "sum", "merge"):
            raise ValueError(f"state {name!r}: reduce must be 'cat', 'sum' or 'merge', got {reduce!r}")
        self._reductions[name] = reduce
        self._defaults[name] = default.clone() if isinstance(default, Tensor) else default
        setattr(self, name, self._initial(name))

    def _initial(self, name: str) -> Any:
        default = self._defaults[name]
        if isinstance(default, list):
            return []
        if isinstance(default, Tensor):
            return default.clone()
        return default  # numbers and None are immutable; a child accumulator is reset in place

    def reset(self: Self) -> Self:
        """Forget everything seen; the settings stay. Returns ``self``."""
        for name, reduce in self._reductions.items():
            if reduce == "merge":
                getattr(self, name).reset()
            else:
                setattr(self, name, self._initial(name))
        return self

    def to(self: Self, device: torch.device | str) -> Self:
        """Move every stored tensor to ``device`` (e.g. to the CPU before sending it to another rank)."""
        for name, reduce in self._reductions.items():
            value = getattr(self, name)
            if reduce == "cat":
                setattr(self, name, [_moved(chunk, device) for chunk in value])
            elif reduce == "merge":
                value.to(device)
            else:
                setattr(self, name, _moved(value, device))
        return self

    def merge(self: Self, other: Self) -> Self:
        """Append ``other``'s state after this one's (a shard of the same data); ``other`` is left as it
        was. The result equals one accumulator fed this one's updates, then ``other``'s. Returns ``self``."""
        if type(other) is not type(self):
            raise TypeError(f"cannot merge {type(other).__name__} into {type(self).__name__}")
        for setting in self.settings:
            mine, theirs = getattr(self, setting), getattr(other, setting)
            if mine != theirs:
                raise ValueError(
                    f"cannot merge {type(self).__name__}s with {setting} {mine!r} and {theirs!r}"
                )
        for name, reduce in self._reductions.items():
            mine, theirs = getattr(self, name), getattr(other, name)
            if reduce == "cat":
                setattr(self, name, mine + theirs)  # a new list: ``other``'s stays its own
            elif reduce == "merge":
                mine.merge(theirs)
            else:
                setattr(self, name, _added(mine, theirs))
        self.check()
        return self

    def accumulate(self, name: str, value: Any) -> None:
        """Add ``value`` to the ``sum`` state ``name`` (on the device the state already lives on)."""
        setattr(self, name, _added(getattr(self, name), value))

    def concatenated(
        self, name: str, convert: Callable[[Tensor], Tensor] | None = None, *, mixed_dtypes: bool = True
    ) -> Tensor:
        """The ``cat`` state ``name`` as one tensor on its first chunk's device, passed through ``convert``
        (a dtype conversion, a value check) if given; kept as the only chunk, so a second ``compute``
        neither copies nor converts again. Always an ordinary tensor, even when the chunks are inference
        tensors (``update`` keeps those by reference too). Needs at least one chunk.

        With ``mixed_dtypes`` (the default), chunks of different dtypes are converted one by one before
        ``cat``, as each update would have converted its own: cat's type promotion can differ (int64 with
        float32 gives float32, not float64). A caller that knows this cannot matter for its chunks passes
        False, which saves a pass over every chunk (thousands of them after many small updates).
        """
        chunks = getattr(self, name)
        if len(chunks) > 1:
            if convert is not None and mixed_dtypes and len({chunk.dtype for chunk in chunks}) > 1:
                chunks = [convert(chunk) for chunk in chunks]
            try:
                whole = torch.cat(chunks)
            except RuntimeError:  # chunks on several devices (merged shards): gather them on the first's
                whole = torch.cat([chunk.to(chunks[0].device) for chunk in chunks])
        else:
            whole = chunks[0]
        if convert is not None:
            whole = convert(whole)
        if whole.is_inference():  # a chunk made under torch.inference_mode, kept as given
            with torch.inference_mode(False):
                whole = whole.clone()  # an ordinary tensor, which in-place ops accept outside that mode
        setattr(self, name, [whole])
        return whole

    def check(self) -> None:
        """Raise ValueError if the state is inconsistent; called after every merge."""


def _moved(value: Any, device: torch.device | str) -> Any:
    return value.to(device) if isinstance(value, Tensor) else value


def _added(mine: Any, theirs: Any) -> Any:
    if theirs is None:
        return mine
    if mine is None:
        return theirs.clone() if isinstance(theirs, Tensor) else theirs
    if isinstance(mine, Tensor):
        return mine + theirs.to(mine.device)  # out of place: a merged-in tensor is never aliased
    return mine + theirs
