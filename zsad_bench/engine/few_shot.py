"""Few-shot references: K normal training images per class, drawn with a seed, handed to the detector."""

from __future__ import annotations

import numpy as np
import torch

from zsad_bench.api import Detector
from zsad_bench.errors import ZsadError

__all__ = ["remember_references"]


def remember_references(
    detector: Detector, dataset_id: str, shots: int, seed: int, device: torch.device
) -> dict[str, list[str]]:
    """Give ``detector`` ``shots`` normal train images of every class; returns the chosen sample ids.

    The images go through the detector's own transform; the draw (without replacement, per class in name
    order) depends only on ``seed``, so the same references are used for every method compared.
    """
    from zsad_bench._factory import load_dataset

    if not detector.few_shot:
        raise ZsadError(f"model '{detector.name}' has no few-shot mode; run it without --shots")
    train = load_dataset(
        dataset_id, split="train", transform=detector.transform(), mask_size=detector.input_size
    )
    rng = np.random.default_rng(seed)
    chosen: dict[str, list[str]] = {}
    detector.forget()
    for class_name in train.classes:
        normal = [i for i in train.class_indices[class_name] if train.labels[i] == 0]
        if len(normal) < shots:
            raise ZsadError(
                f"class '{class_name}' of {dataset_id} has {len(normal)} normal training image(s); "
                f"--shots {shots} needs that many"
            )
        picks = sorted(rng.choice(len(normal), size=shots, replace=False).tolist())
        items = [train[normal[p]] for p in picks]
        images = torch.stack([item["image"] for item in items]).to(device)
        with torch.no_grad():
            detector.remember(items[0]["prompt_name"], images)
        chosen[class_name] = [item["sample_id"] for item in items]
    return chosen
