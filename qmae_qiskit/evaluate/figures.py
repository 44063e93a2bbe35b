"""Paper figures 6-8 from trained runs: reconstructions (exact path, evaluation masks) and loss curves."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from qmae_qiskit.evaluate.metrics import probabilities_to_image, to_pixels
from qmae_qiskit.figures import pyplot, save_figure
from qmae_qiskit.model.masking import eval_masks
from qmae_qiskit.simulate import exact
from qmae_qiskit.train.plots import draw_loss


def pick_digits(labels: torch.Tensor, count: int = 5) -> list[int]:
    """Rows of the first image of each of the labels 0, 1, 2, ... (``count`` distinct digits, like the paper)."""
    rows: list[int] = []
    for digit in range(10):
        hits = (labels == digit).nonzero().flatten()
        if len(hits):
            rows.append(int(hits[0]))
        if len(rows) == count:
            break
    return rows


def reconstructions(
    tm, images: torch.Tensor, indices: torch.Tensor, mask_seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """(pixel reconstructions (N, L, L), the masked inputs as pixels (N, L, L)) with the evaluation masks."""
    model = tm.module()
    patch_idx = eval_masks(tm.cfg, tm.mask_ratio, indices, mask_seed)
    with torch.no_grad():
        xm = model.masked_inputs(images, patch_idx)
        probs = exact.reconstruct(tm.theta, xm, tm.cfg)
    L = tm.cfg.image_size
    return probabilities_to_image(probs, L), to_pixels(xm).reshape(-1, L, L)


def _grid(rows: Sequence[tuple[str, torch.Tensor]], path: str | Path, title: str) -> Path:
    plt = pyplot()

    ncols = rows[0][1].shape[0]
    fig, axes = plt.subplots(
        len(rows), ncols, figsize=(1.5 * ncols + 1.4, 1.5 * len(rows) + 0.5), dpi=120, squeeze=False
    )
    for r, (label, imgs) in enumerate(rows):
        for c in range(ncols):
            ax = axes[r][c]
            ax.imshow(imgs[c].numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(label, fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def fig6(qmae, qae, images: torch.Tensor, indices: torch.Tensor, path: str | Path, mask_seed: int = 0) -> Path:
    """Paper Fig. 6: QMAE (row 1), QAE (row 2), original (row 3); the masked input the QAE saw in row 4."""
    rq, _ = reconstructions(qmae, images, indices, mask_seed)
    ra, masked = reconstructions(qae, images, indices, mask_seed)
    orig = to_pixels(images.reshape(len(images), -1)).reshape(images.shape)
    return _grid(
        [("QMAE", rq), ("QAE", ra), ("original", orig), ("masked input", masked)],
        path,
        f"Reconstructions at {qmae.mask_ratio:.0%} mask (same mask for QMAE and QAE)",
    )


def fig7(runs: Sequence, images: torch.Tensor, indices: torch.Tensor, path: str | Path, mask_seed: int = 0) -> Path:
    """Paper Fig. 7: QMAE at each mask ratio (one row each), original last."""
    rows = [(f"QMAE {tm.mask_ratio:.1%}", reconstructions(tm, images, indices, mask_seed)[0]) for tm in runs]
    rows.append(("original", to_pixels(images.reshape(len(images), -1)).reshape(images.shape)))
    return _grid(rows, path, "QMAE reconstructions at different mask ratios")


def fig8(curves: Sequence[tuple[str, Sequence[dict]]], path: str | Path) -> Path:
    """Paper Fig. 8: training loss 1 - <Z> per step of each run, one panel each, (a), (b), ..."""
    plt = pyplot()

    fig, axes = plt.subplots(1, len(curves), figsize=(5.2 * len(curves), 3.6), dpi=120, squeeze=False)
    for i, (label, records) in enumerate(curves):
        draw_loss(axes[0][i], records, f"({chr(97 + i)}) {label}")
    fig.tight_layout()
    return save_figure(fig, path)
