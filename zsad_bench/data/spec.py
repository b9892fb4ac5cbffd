"""What a dataset is to zsad-bench: a ``DatasetSpec`` (facts, sources, how to build its manifest)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = ["ClassSpec", "DatasetSpec", "Source"]


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

    builder: ``"module:function"`` that writes images, masks and the manifest into a folder without any
        download (the embedded ``synthetic`` dataset); ``None`` for downloaded datasets.
    builder_options: keyword arguments for the builder (e.g. another ``seed`` for a second synthetic set).
    converter: ``"module:function"`` that turns the raw layout found under a folder into the manifest.
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
    builder: str | None = None
    builder_options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    converter: str | None = None

    @property
    def class_names(self) -> list[str]:
        return [c.name for c in self.classes]

    def prompt_name(self, class_name: str) -> str:
        for c in self.classes:
            if c.name == class_name:
                return c.prompt_name
        return class_name.replace("_", " ")
