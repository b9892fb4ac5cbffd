"""Loading the official AdaCLIP checkpoints (``pretrained_mvtec_colondb.pth``,
``pretrained_visa_clinicdb.pth``, ``pretrained_all.pth``).

Layout (``trainer.save``, reference/adaclip.md): a flat dict of the 38 learned float32 tensors, keys
``clip_model.<module>...``: ``text_prompter.static_prompts.{0..3}`` (5, 768),
``visual_prompter.static_prompts.{0..3}`` (5, 1024), ``patch_token_layer.head.{0..3}`` (768 x 1024),
``cls_token_layer.head.0`` (768 x 768), ``dynamic_visual_prompt_generator.head.{0..4}`` (1024 x 768) and
``dynamic_text_prompt_generator.head.{0..4}`` (768 x 768). Our modules carry the same names, so a key maps
by dropping ``clip_model.``. Read with ``torch.load(weights_only=True)``: no pickled code runs. The prompt
length, depth and type come from the shapes; widths are checked against the backbone when loading.

Which data trained which file (the README naming trap). The README's weights table says "MVTec AD &
ClinicDB" and "VisA & ColonDB", but the code says otherwise: ``train.sh`` trains ``--training_data mvtec
colondb`` and ``visa clinicdb``; ``test.sh`` evaluates ``pretrained_mvtec_colondb.pth`` on every dataset
except MVTec AD and ColonDB and ``pretrained_visa_clinicdb.pth`` on MVTec AD and ColonDB; ``app.py`` names
the two files the same way; and the README's own "Corrections" section says the models were trained on
MVTec AD + ColonDB and VisA + ClinicDB. So the file names are right and the table is wrong:
``pretrained_mvtec_colondb.pth`` -> mvtec-ad + cvc-colondb, ``pretrained_visa_clinicdb.pth`` -> visa +
cvc-clinicdb. ``pretrained_all.pth`` was trained on all 14 AdaCLIP datasets and has seen every test set:
its ``trained_on`` names all of them, so the zero-shot guard refuses it everywhere. A renamed file is
refused, since nothing inside a checkpoint says what it was trained on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from zsad_bench.errors import ZsadError
from zsad_bench.ops.official import read_official_state

__all__ = ["ALL_DATASETS", "TRAINED_ON", "load_official", "official_options", "official_state", "trained_on"]

PREFIX = "clip_model."
ALL_DATASETS = (
    "br35h", "brainmri", "btad", "cvc-clinicdb", "cvc-colondb", "dagm", "dtd-synthetic", "headct", "isic",
    "mpdd", "mvtec-ad", "sdd", "tn3k", "visa",
)  # fmt: skip
TRAINED_ON = {
    "pretrained_mvtec_colondb.pth": "mvtec-ad+cvc-colondb",
    "pretrained_visa_clinicdb.pth": "visa+cvc-clinicdb",
    "pretrained_all.pth": "+".join(ALL_DATASETS),
}
MODULES = (
    "text_prompter.static_prompts.",
    "visual_prompter.static_prompts.",
    "patch_token_layer.head.",
    "cls_token_layer.head.",
    "dynamic_visual_prompt_generator.head.",
    "dynamic_text_prompt_generator.head.",
)


def trained_on(path: Path) -> str:
    """The auxiliary datasets of a released file, told by its name (``+``-joined dataset ids)."""
    if path.name not in TRAINED_ON:
        raise ZsadError(
            f"the training data of AdaCLIP checkpoint {path.name} cannot be told from its name; keep the "
            f"released file name ({', '.join(TRAINED_ON)})"
        )
    return TRAINED_ON[path.name]


def official_state(path: Path) -> dict[str, torch.Tensor]:
    """The learned tensors of an official file, keys without ``clip_model.`` (ZsadError if it is not one)."""
    state = read_official_state(path, None, "AdaCLIP")
    foreign = [k for k in state if not (k.startswith(PREFIX) and k[len(PREFIX) :].startswith(MODULES))]
    if not state or foreign:
        shown = ", ".join(foreign[:3]) if foreign else "no tensors"
        raise ZsadError(f"checkpoint {path} holds {shown}; it is not an official AdaCLIP checkpoint")
    return {k[len(PREFIX) :]: v for k, v in state.items()}


def _count(state: dict[str, torch.Tensor], prefix: str) -> int:
    return len({k[len(prefix) :].split(".")[0] for k in state if k.startswith(prefix)})


def official_options(cls: Any, path: Path, state: dict[str, torch.Tensor] | None = None) -> Any:
    """``cls.Options`` with the prompt shapes of an official file and ``trained_on`` from its name."""
    state = official_state(path) if state is None else state
    owner = f"checkpoint {path}"
    text, visual = _count(state, MODULES[0]), _count(state, MODULES[1])
    dynamic = _count(state, MODULES[4])
    heads = _count(state, MODULES[2])
    defaults = cls.Options()
    if heads != len(defaults.features) or not _count(state, MODULES[3]):
        raise ZsadError(
            f"{owner} has {heads} patch heads and {_count(state, MODULES[3])} CLS head; an official AdaCLIP "
            f"checkpoint has {len(defaults.features)} and 1"
        )
    if not (text or visual or dynamic):
        raise ZsadError(f"{owner} has no prompts; it is not an official AdaCLIP checkpoint")
    values: dict[str, Any] = {"trained_on": trained_on(path)}
    values["prompt_type"] = ("S" if text or visual else "") + ("D" if dynamic else "")
    if text or visual:
        values["prompt_depth"] = max(text, visual)
        values["prompt_length"] = next(v.shape[0] for k, v in state.items() if ".static_prompts." in k)
        values["prompt_branch"] = ("V" if visual else "") + ("L" if text else "")
    else:
        values["prompt_length"] = dynamic
    return cls.Options.build(values, owner=owner)


def load_official(cls: Any, path: Path, **options: Any) -> Any:
    """Build ``cls`` (AdaCLIP) with ``options`` over the shapes of an official file, and load its tensors."""
    state = official_state(path)
    detector = cls(official_options(cls, path, state), **options)
    detector.load_trainable_state_dict(state, source=str(path))
    return detector
