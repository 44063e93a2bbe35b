"""Pure metric functions shared by ``evaluate`` and ``jobs fetch``: reconstructions to images, and their scores.

Pixel scaling (decides SSIM and what the classifier sees). The circuit returns probabilities p_i (sum 1) of the
decoded register; amplitudes are sqrt(p_i) (the image is non-negative, so no sign is lost), a unit vector. The
image's own scale was removed by the amplitude embedding and cannot be read back: the clean image's norm is not
known at inference, and the masked input's norm is biased (its masked patch is zero or a token). So every image
that is scored -- reconstruction, baseline, *and* the original -- is mapped to pixels by :func:`to_pixels`, which
divides by the image's maximum: a scale-free rule that needs nothing but the vector itself, puts MNIST-like
images (ink saturating at 1) on [0, 1], and is what the classifier is trained on. SSIM then uses
``data_range=1.0``. Cosine similarity and fidelity are scale-invariant and do not depend on this choice.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import torch
from scipy.ndimage import uniform_filter

from qmae_qiskit.errors import QMAEError

SSIM_WIN = 7  # scikit-image's default window (uniform 7x7, sample covariance)
SSIM_K1, SSIM_K2 = 0.01, 0.03


# ------------------------------------------------------------------------------------ reconstruction -> image
def to_pixels(v: torch.Tensor) -> torch.Tensor:
    """Non-negative images (..., D) divided by their maximum, so the brightest pixel is 1; all-zero stays zero."""
    v = torch.as_tensor(v).clamp(min=0)
    peak = v.amax(-1, keepdim=True)
    return torch.where(peak > 0, v / torch.where(peak > 0, peak, torch.ones_like(peak)), torch.zeros_like(v))


def probabilities_to_amplitudes(p: torch.Tensor) -> torch.Tensor:
    """sqrt(p): the non-negative amplitudes whose squares are the measured probabilities."""
    return torch.sqrt(torch.as_tensor(p).clamp(min=0))


def probabilities_to_image(p: torch.Tensor, image_size: int) -> torch.Tensor:
    """Probabilities (..., L*L) of the decoded register -> pixel images (..., L, L) in [0, 1]."""
    p = torch.as_tensor(p)
    if p.shape[-1] != image_size * image_size:
        raise QMAEError(
            f"expected {image_size * image_size} probabilities for a {image_size}x{image_size} image, got {p.shape[-1]}"
        )
    return to_pixels(probabilities_to_amplitudes(p)).reshape(*p.shape[:-1], image_size, image_size)


def _outcome_index(key: object, n_bits: int) -> int:
    """A counts key (bitstring, maybe spaced; '0x..' hex; or int) as the integer pixel index."""
    if isinstance(key, (int, np.integer)):
        value = int(key)
    else:
        text = str(key).replace(" ", "")
        value = int(text, 16) if text.startswith("0x") else int(text, 2)
    if not 0 <= value < 1 << n_bits:
        raise QMAEError(f"measurement outcome {key!r} does not fit {n_bits} data bits")
    return value


def counts_to_probabilities(counts: Mapping[object, int], n_bits: int) -> torch.Tensor:
    """Counts of the reconstruction circuit (clbit j = bit j of the pixel index) -> frequencies (2^n,)."""
    freq = torch.zeros(1 << n_bits, dtype=torch.float64)
    for key, c in counts.items():
        freq[_outcome_index(key, n_bits)] += float(c)
    total = float(freq.sum())
    if total <= 0:
        raise QMAEError("the counts are empty; run the reconstruction circuit with at least one shot")
    return freq / total


def counts_to_image(counts: Mapping[object, int], image_size: int) -> torch.Tensor:
    """Counts -> the same (L, L) pixel image that the exact probabilities give as the shots grow."""
    n_bits = round(math.log2(image_size * image_size))
    return probabilities_to_image(counts_to_probabilities(counts, n_bits), image_size)


def swap_test_fidelity(counts: Mapping[object, int]) -> float:
    """<Z> = P(0) - P(1) of the SWAP-test ancilla from its one-bit counts."""
    zeros = sum(c for k, c in counts.items() if _outcome_index(k, 1) == 0)
    ones = sum(c for k, c in counts.items() if _outcome_index(k, 1) == 1)
    if zeros + ones == 0:
        raise QMAEError("the SWAP-test counts are empty")
    return (zeros - ones) / (zeros + ones)


# ---------------------------------------------------------------------------------------------- scores
def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of flattened images, per row: (N, ...) x (N, ...) -> (N,). Zero if either is zero."""
    a = torch.as_tensor(a, dtype=torch.float64).reshape(len(a), -1)
    b = torch.as_tensor(b, dtype=torch.float64).reshape(len(b), -1)
    den = a.norm(dim=1) * b.norm(dim=1)
    return torch.where(den > 0, (a * b).sum(1) / torch.where(den > 0, den, torch.ones_like(den)), torch.zeros_like(den))


def pure_state_fidelity(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """|<a|b>|^2 of the amplitude embeddings of two real images: the fidelity a no-circuit baseline would score."""
    return cosine(a, b) ** 2


def ssim_window(side: int) -> int:
    """scikit-image's 7x7 window, or the largest odd window that fits a smaller image (at least 3)."""
    win = min(SSIM_WIN, side if side % 2 else side - 1)
    if win < 3:
        raise QMAEError(f"SSIM needs images of at least 3x3 pixels, got side {side}")
    return win


def ssim(a: torch.Tensor, b: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Per-image SSIM (N, L, L) x (N, L, L) -> (N,), identical to scikit-image's ``structural_similarity``
    with its defaults (7x7 uniform window, sample covariance, reflect borders) and an explicit ``data_range``,
    computed for the whole batch at once (scikit-image loops in Python, ~0.1 ms per 16x16 image).
    Images smaller than 7x7 (4x4 runs on small devices) use the largest odd window that fits, as
    ``structural_similarity(..., win_size=w)`` would.
    """
    if data_range is None or not data_range > 0:
        raise QMAEError(f"SSIM needs an explicit positive data_range, got {data_range}")
    x = np.asarray(torch.as_tensor(a, dtype=torch.float64))
    y = np.asarray(torch.as_tensor(b, dtype=torch.float64))
    if x.shape != y.shape or x.ndim != 3:
        raise QMAEError(f"SSIM needs two batches of images of the same shape (N, H, W), got {x.shape} and {y.shape}")
    win = ssim_window(min(x.shape[1:]))
    size = (1, win, win)  # no filtering across the batch axis
    f = lambda im: uniform_filter(im, size=size, mode="reflect")
    np_ = win**2
    cov = np_ / (np_ - 1)
    ux, uy = f(x), f(y)
    vx = cov * (f(x * x) - ux * ux)
    vy = cov * (f(y * y) - uy * uy)
    vxy = cov * (f(x * y) - ux * uy)
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
    pad = (win - 1) // 2
    return torch.from_numpy(s[:, pad:-pad, pad:-pad].mean(axis=(1, 2), dtype=np.float64))


# ----------------------------------------------------------------------------------------- aggregation
def summarize(values: torch.Tensor | np.ndarray, digits: int = 10) -> dict:
    """Mean, standard deviation, standard error and count of per-image values, rounded to ``digits`` decimals:
    far below the standard error, and above the last-bit noise of multi-threaded GEMMs, so that re-evaluating
    the same parameters writes the same numbers."""
    v = np.asarray(torch.as_tensor(values, dtype=torch.float64))
    n = int(v.size)
    if n == 0:
        return {"mean": float("nan"), "std": float("nan"), "sem": float("nan"), "n": 0}
    std = float(v.std(ddof=1)) if n > 1 else 0.0
    return {
        "mean": round(float(v.mean()), digits),
        "std": round(std, digits),
        "sem": round(std / math.sqrt(n), digits),
        "n": n,
    }


def image_scores(recon_pixels: torch.Tensor, clean: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-image cosine and SSIM of pixel images (N, L, L) against the originals, both through :func:`to_pixels`."""
    N = clean.shape[0]
    ref = to_pixels(clean.reshape(N, -1)).reshape(clean.shape)
    rec = to_pixels(recon_pixels.reshape(N, -1)).reshape(clean.shape)
    return {"cs": cosine(rec, ref), "ssim": ssim(rec, ref, data_range=1.0)}
