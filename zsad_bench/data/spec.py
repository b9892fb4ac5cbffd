"""What a dataset is to zsad-bench: a ``DatasetSpec`` (facts, sources, how to build its manifest)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from zsad_bench.errors import ZsadError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ClassSpec", "Converter", "DatasetSpec", "Source"]

Converter = Callable[[Path, "DatasetSpec"], "pd.DataFrame"]


@dataclass(frozen=True)
class ClassSpec:
    """One class: the folder-style name (``metal_nut``) and the words used in prompts (``metal nut``)."""

    name: str
    prompt_name: str


@dataclass(frozen=True)
class Source:
    """One place a dataset can be fetched from, tried in the order the spec lists them.

    kind: ``https`` (url + sha256), ``gdrive`` (file id), ``kaggle`` (slug), ``hf`` (dataset repo).
    group: sources sharing a non-empty group are the parts of one alternative, all fetched together
        (ISIC's images and ground-truth zips, TN3K's RAR parts).
    """

    kind: str
    location: str
    sha256: str | None = None
    filename: str | None = None
    note: str = ""
    group: str = ""


@dataclass(frozen=True)
class DatasetSpec:
    """Facts about one dataset and how its manifest is built.

    builder: ``builder(folder, **builder_options)`` writes images, masks and the manifest into ``folder``
        without any download (the embedded ``synthetic`` dataset); ``None`` for downloaded datasets.
    builder_options: keyword arguments for the builder (e.g. another ``seed`` for a second synthetic set).
    converter: ``converter(raw, spec) -> DataFrame`` turns the raw layout found anywhere under the folder
        ``raw`` into manifest rows (paths relative to ``raw``); ``None`` when only a ``meta.json`` can
        prepare the dataset. A plain function, defined beside the spec in the dataset's module.
    expected_counts: class -> (normal, anomalous) test images under the AnomalyCLIP protocol; classes whose
        count is not known are left out.
    expected_total: (normal, anomalous) test images of the whole dataset; the only count recorded when the
        per-class counts are not known (only the paper's total is); ``None`` when not recorded.
    """

    id: str
    title: str
    domain: str
    modality: str
    licence: str
    citation: str
    homepage: str
    classes: tuple[ClassSpec, ...]
    has_masks: bool
    sources: tuple[Source, ...] = ()
    expected_counts: Mapping[str, tuple[int, int]] = field(default_factory=lambda: MappingProxyType({}))
    expected_total: tuple[int, int] | None = None
    builder: Callable[..., Any] | None = None
    builder_options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    converter: Converter | None = None

    def __post_init__(self) -> None:
        # Read-only views of private copies: a spec is shared by every user of the registry.
        for name in ("expected_counts", "builder_options"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))

    def __reduce__(self) -> tuple[Any, ...]:
        # A mappingproxy cannot be pickled, and DataLoader workers started by "spawn" pickle the dataset
        # that carries this spec: rebuild it from plain dicts (``__post_init__`` makes the views again).
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update({k: dict(values[k]) for k in ("expected_counts", "builder_options")})
        return _rebuild, (type(self), values)

    def convert(self, raw: Path) -> pd.DataFrame:
        """The manifest rows of the raw files found under ``raw`` (see ``converter``)."""
        if self.converter is None:
            raise ZsadError(f"dataset '{self.id}' has no converter; prepare it from an AnomalyCLIP meta.json")
        return self.converter(raw, self)

    @property
    def class_names(self) -> list[str]:
        return [c.name for c in self.classes]

    def prompt_name(self, class_name: str) -> str:
        for c in self.classes:
            if c.name == class_name:
                return c.prompt_name
        return class_name.replace("_", " ")


def _rebuild(cls: type[DatasetSpec], values: dict[str, Any]) -> DatasetSpec:
    return cls(**values)
