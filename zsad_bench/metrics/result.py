"""``MetricResult``: metric values of one class, where an undefined metric is ``None`` with a reason.

The field's repositories report an undefined metric as 0 (AdaCLIP, which then averages it in) or NaN
(CFlow-style AUPRO on a class without regions); see reference/metrics.md §5. Here it is ``None``, and
``reasons`` says why, so a report can print "n/a" with a footnote and a mean can skip it knowingly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = ["MetricResult"]


class MetricResult(dict[str, float | None]):
    """Maps a metric key (``auroc``, ``ap``, ``f1_max``, ``aupro``) to a fraction in [0, 1] or ``None``.

    ``reasons`` maps every key whose value is ``None`` to a short explanation ("no anomalous pixels").
    ``error_bounds`` maps a key to a guaranteed bound on |value - exact value| when the value is an
    approximation (histogram mode); exact values have no entry. A value is never NaN and never a
    stand-in 0.
    """

    def __init__(
        self,
        values: Mapping[str, float | None] | None = None,
        reasons: Mapping[str, str] | None = None,
        error_bounds: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__(values or {})
        self.reasons: dict[str, str] = dict(reasons or {})
        self.error_bounds: dict[str, float] = dict(error_bounds or {})
        for key, value in self.items():
            if value is None and key not in self.reasons:
                raise ValueError(f"metric {key!r} is None but has no reason; pass reasons={{{key!r}: ...}}")

    @classmethod
    def missing(cls, keys: Iterable[str], reason: str) -> MetricResult:
        """A result in which every key in ``keys`` is ``None`` for the same ``reason``."""
        keys = list(keys)
        return cls(dict.fromkeys(keys), dict.fromkeys(keys, reason))

    def set_missing(self, key: str, reason: str) -> None:
        """Mark ``key`` as undefined (``None``) and record why."""
        self[key] = None
        self.reasons[key] = reason

    def renamed(self, keys: Mapping[str, str]) -> MetricResult:
        """The same values, reasons and bounds under new keys, in ``keys``' order (``keys`` maps every
        key of this result to its new one: ``result_keys("pixel")`` turns ``aupro`` into ``pixel_aupro``)."""
        return MetricResult(
            {new: self[old] for old, new in keys.items()},
            {keys[old]: reason for old, reason in self.reasons.items()},
            {keys[old]: bound for old, bound in self.error_bounds.items()},
        )

    def __repr__(self) -> str:
        bounds = f", error_bounds={self.error_bounds!r}" if self.error_bounds else ""
        return f"MetricResult({dict.__repr__(self)}, reasons={self.reasons!r}{bounds})"

    def __reduce__(self) -> tuple[type[MetricResult], tuple[dict[str, float | None], dict[str, str], dict]]:
        return (type(self), (dict(self), dict(self.reasons), dict(self.error_bounds)))
