"""No-circuit baselines: what a reader gets from the masked image alone, so the circuit's contribution is visible.

Three fills of the same masked patches (the same images and masks the models see), each scored like a model:

``masked``          the masked input itself, masked pixels zero (what QAE is fed)
``mean_patch``      one shared mean patch (H_p x W_p, the mask token's shape) in every masked patch: the mean
                    training image averaged over all patch positions -- a mask token with no circuit after it
``position_mean``   the mean training image's own pixels at each masked position (per-position mean patch)

A baseline's "fidelity" is |<x_fill|x_clean>|^2 of the two amplitude embeddings: the SWAP-test value if the
filled image were handed over unchanged (no compression).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from qmae_qiskit.errors import QMAEError
from qmae_qiskit.model.config import QMAEConfig
from qmae_qiskit.model.masking import grid_shape, insert_token, mask_from_indices

BASELINES = ("masked", "mean_patch", "position_mean")
DESCRIPTIONS = {
    "masked": "masked input, no model",
    "mean_patch": "shared mean patch filled in, no circuit",
    "position_mean": "per-position mean patch filled in, no circuit",
}
LABELS = {"masked": "masked input", "mean_patch": "shared mean patch", "position_mean": "per-position mean"}


@dataclass(frozen=True)
class FillStatistics:
    """What the fills need from the training images: the mean image (L, L) and its patch-averaged patch."""

    mean_image: torch.Tensor
    mean_patch: torch.Tensor  # (H_p * W_p,)

    def to_dict(self) -> dict:
        return {"mean_image": self.mean_image.tolist(), "mean_patch": self.mean_patch.tolist()}


def fit(train_images: torch.Tensor, cfg: QMAEConfig) -> FillStatistics:
    """Mean training image and the mean over all patch positions of its patches (no test image is used)."""
    if train_images.dim() != 3 or train_images.shape[0] == 0 or tuple(train_images.shape[1:]) != (cfg.image_size,) * 2:
        raise QMAEError(
            f"baselines need training images of shape (N, {cfg.image_size}, {cfg.image_size}), "
            f"got {tuple(train_images.shape)}"
        )
    rows, cols = grid_shape(cfg)
    hp, wp = int(cfg.patch_height), int(cfg.patch_width)  # type: ignore[arg-type]
    mean = train_images.to(torch.float64).mean(0)
    patch = mean.reshape(rows, hp, cols, wp).mean(dim=(0, 2)).reshape(-1)
    return FillStatistics(mean, patch)


def fill(
    name: str, images: torch.Tensor, patch_idx: torch.Tensor, cfg: QMAEConfig, stats: FillStatistics
) -> torch.Tensor:
    """The baseline's image (N, L, L) for clean ``images`` with masked patches ``patch_idx``."""
    images = images.to(torch.float64)
    if name == "masked":
        return insert_token(images, patch_idx, cfg, None)
    if name == "mean_patch":
        return insert_token(images, patch_idx, cfg, stats.mean_patch)
    if name == "position_mean":
        mask = mask_from_indices(cfg, patch_idx)
        return torch.where(mask, stats.mean_image.expand_as(images), images)
    raise QMAEError(f"unknown baseline {name!r}; use one of {', '.join(BASELINES)}")
