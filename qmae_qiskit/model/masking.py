"""Patch masking (Algorithm 1): a grid of H_p x W_p patches, a ratio of them picked per sample, a token inserted.

Masks are keyed by (seed, epoch, sample index): image ``idx`` gets the patches that
``np.random.default_rng(np.random.SeedSequence([seed, epoch, idx])).choice(patches, m, replace=False)`` picks, so
one image gets the same mask in QMAE and in QAE, in any batch order and in any subset of the data set. The
whole batch is drawn at once by :func:`qmae_qiskit.model.keyed_sampling.keyed_choice` (the same numbers, computed
as array operations).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from qmae_qiskit.model.config import QMAEConfig
from qmae_qiskit.model.keyed_sampling import keyed_choice, reference_choice

EVAL_MASK_EPOCH = 2_000_000  # apart from every training epoch and from training's validation masks


def grid_shape(cfg: QMAEConfig) -> tuple[int, int]:
    """Patches per column and per row."""
    return cfg.image_size // cfg.patch[0], cfg.image_size // cfg.patch[1]


def patches_for_ratio(cfg: QMAEConfig, ratio: float) -> int:
    """How many patches a mask ratio means; the grid must make the ratio exactly."""
    rows, cols = grid_shape(cfg)
    total = rows * cols
    count = ratio * total
    if not 0 < ratio < 1 or not math.isclose(count, round(count), abs_tol=1e-9) or round(count) < 1:
        possible = ", ".join(f"{m / total:g}" for m in range(1, total))
        raise ValueError(
            f"mask ratio {ratio:g} is not a whole number of {cfg.patch_height}x{cfg.patch_width} patches of a "
            f"{cfg.image_size}x{cfg.image_size} image ({total} patches); use one of: {possible or 'none'}, "
            f"or change the patch size"
        )
    return int(round(count))


def sample_mask_indices(cfg: QMAEConfig, ratio: float, indices, seed: int, epoch: int = 0) -> torch.Tensor:
    """``get_mask_idx``: for each sample index, the sorted indices of its masked patches (row-major over the grid).

    Returns a long tensor of shape (B, m), m = ratio * patches; vectorised over the batch.
    """
    m = patches_for_ratio(cfg, ratio)
    rows, cols = grid_shape(cfg)
    keys = np.asarray(indices, dtype=np.int64).reshape(-1)
    return torch.from_numpy(keyed_choice((int(seed), int(epoch)), keys, rows * cols, m))


def sample_mask_indices_reference(cfg: QMAEConfig, ratio: float, indices, seed: int, epoch: int = 0) -> torch.Tensor:
    """:func:`sample_mask_indices` one image at a time with numpy's own generators (the definition; tests)."""
    m = patches_for_ratio(cfg, ratio)
    rows, cols = grid_shape(cfg)
    out = np.empty((len(indices), m), dtype=np.int64)
    for r, idx in enumerate(np.asarray(indices, dtype=np.int64).tolist()):
        out[r] = reference_choice((int(seed), int(epoch)), idx, rows * cols, m)
    return torch.from_numpy(out)


def eval_masks(cfg: QMAEConfig, ratio: float, indices: torch.Tensor, mask_seed: int) -> torch.Tensor:
    """The evaluation masks: the same for every model with this patch grid, ratio and seed."""
    return sample_mask_indices(cfg, ratio, indices, mask_seed, epoch=EVAL_MASK_EPOCH)


def mask_from_indices(cfg: QMAEConfig, patch_idx: torch.Tensor) -> torch.Tensor:
    """Boolean masks (B, L, L), True where a pixel is masked."""
    rows, cols = grid_shape(cfg)
    hp, wp = int(cfg.patch_height), int(cfg.patch_width)  # type: ignore[arg-type]
    grid = torch.zeros(patch_idx.shape[0], rows * cols, dtype=torch.bool, device=patch_idx.device)
    grid.scatter_(1, patch_idx, True)
    grid = grid.reshape(-1, rows, cols)
    return grid.repeat_interleave(hp, 1).repeat_interleave(wp, 2)


def insert_token(
    images: torch.Tensor, patch_idx: torch.Tensor, cfg: QMAEConfig, token: torch.Tensor | None
) -> torch.Tensor:
    """Masked images (B, L, L): every masked patch replaced by ``token`` (H_p*W_p values), or zeros if None (QAE).

    Differentiable with respect to ``token``.
    """
    mask = mask_from_indices(cfg, patch_idx).to(images.device)
    if token is None:
        return images.masked_fill(mask, 0.0)
    rows, cols = grid_shape(cfg)
    hp, wp = int(cfg.patch_height), int(cfg.patch_width)  # type: ignore[arg-type]
    tiled = token.reshape(hp, wp).to(images.dtype).repeat(rows, cols)  # token at every patch position
    return torch.where(mask, tiled.expand_as(images), images)


def default_patch_shape(image_size: int, ratio: float) -> tuple[int, int]:
    """The coarsest patch grid that makes ``ratio`` exactly: (H_p, W_p).

    Grids are tried from coarse to fine (2x2, 4x2, 4x4, 8x4, ...: rows double first), so 25 % and 50 % of a 16x16
    image use 8x8 patches (the paper's default) and 12.5 % uses 4x8 patches (8 patches, one masked).
    """
    rows, cols = 2, 2
    while rows <= image_size and cols <= image_size:
        count = ratio * rows * cols
        if 0 < ratio < 1 and math.isclose(count, round(count), abs_tol=1e-9) and round(count) >= 1:
            return image_size // rows, image_size // cols
        if rows == cols:
            rows *= 2
        else:
            cols *= 2
    raise ValueError(
        f"mask ratio {ratio:g} cannot be made from whole patches of a {image_size}x{image_size} image; "
        f"use a ratio like 0.125, 0.25 or 0.5"
    )
