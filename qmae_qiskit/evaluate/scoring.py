"""Pure scoring: reconstructions and fidelity estimates in, per-image and aggregate metrics out.

:func:`score` is the one place a reconstruction becomes numbers: ``evaluate``, ``jobs fetch`` and the hardware
study all call it, whatever produced the probabilities (the exact path, Aer, a twin, a device).
"""

from __future__ import annotations

import torch

from qmae_qiskit.errors import QMAEError
from qmae_qiskit.evaluate.classifier import predict
from qmae_qiskit.evaluate.metrics import (
    cosine,
    image_scores,
    probabilities_to_amplitudes,
    probabilities_to_image,
    pure_state_fidelity,
    summarize,
)

METRICS = ("fidelity", "cs", "ssim", "accuracy")
PAPER_TABLE1 = {  # paper Table 1: 10,000 MNIST test images, 25 % mask (one 8x8 patch of a 16x16 image)
    "qmae": {"fidelity": 0.734, "cs": 0.843, "ssim": 0.446, "accuracy": 0.6506},
    "qae": {"fidelity": 0.600, "cs": 0.799, "ssim": 0.445, "accuracy": 0.5220},
}
PIXEL_SCALING = (
    "amplitudes sqrt(p) of the decoded register; every scored image (reconstruction, baseline, "
    "original) divided by its own maximum (metrics.to_pixels), since the embedding removes the "
    "image's scale and the clean norm is unknown at inference; SSIM: scikit-image defaults "
    "(7x7 uniform window) with data_range=1.0"
)


def score(
    probs: torch.Tensor,
    fidelity: torch.Tensor | None,
    clean: torch.Tensor,
    labels: torch.Tensor,
    classifier: torch.nn.Module | None,
) -> dict[str, torch.Tensor]:
    """Per-image metrics of reconstructions given as probabilities (N, L*L) against clean images (N, L, L).

    ``fidelity`` (N,) comes from the backend (exact <Z> or a SWAP-test estimate); accuracy is 1/0 per image.
    """
    N, L = clean.shape[0], clean.shape[-1]
    if probs.shape != (N, L * L):
        raise QMAEError(f"expected reconstruction probabilities of shape ({N}, {L * L}), got {tuple(probs.shape)}")
    pixels = probabilities_to_image(probs, L)
    out = image_scores(pixels, clean)
    out["cs"] = cosine(probabilities_to_amplitudes(probs), clean)  # scale-free: the same as on pixels
    if fidelity is not None:
        out["fidelity"] = torch.as_tensor(fidelity, dtype=torch.float64).reshape(N)
    if classifier is not None:
        out["accuracy"] = (predict(classifier, pixels) == labels.long()).double()
    return out


def score_images(
    filled: torch.Tensor, clean: torch.Tensor, labels: torch.Tensor, classifier: torch.nn.Module | None
) -> dict[str, torch.Tensor]:
    """Per-image metrics of a no-circuit image (a baseline); its fidelity is that of the plain embedding."""
    N = clean.shape[0]
    out = image_scores(filled, clean)
    out["fidelity"] = pure_state_fidelity(filled.reshape(N, -1), clean.reshape(N, -1))
    if classifier is not None:
        out["accuracy"] = (predict(classifier, filled) == labels.long()).double()
    return out


def aggregate(per_image: dict[str, torch.Tensor]) -> dict[str, dict]:
    """Mean, std, standard error and count of every metric, in :data:`METRICS` order."""
    return {k: summarize(per_image[k]) for k in METRICS if k in per_image}


def format_table(result: dict) -> str:
    """A plain-text table: the model, then the baselines, one row each."""
    head = f"{'':42s} {'fidelity':>9s} {'CS':>7s} {'SSIM':>7s} {'accuracy':>9s}"
    rows = [head, "-" * len(head)]

    def row(name: str, m: dict) -> str:
        cells = []
        for k in METRICS:
            if k not in m:
                cells.append(f"{'-':>9s}" if k in ("fidelity", "accuracy") else f"{'-':>7s}")
            elif k == "accuracy":
                cells.append(f"{100 * m[k]['mean']:8.2f}%")
            else:
                cells.append(f"{m[k]['mean']:{9 if k == 'fidelity' else 7}.3f}")
        return f"{name:42s} " + " ".join(cells)

    rows.append(row(f"{result['model'].upper()} ({result['backend']})", result["metrics"]))
    for m in (result.get("baselines") or {}).values():
        rows.append(row(f"  baseline: {m['label']} (no circuit)", m))
    if result.get("paper"):
        paper = {k: {"mean": v} for k, v in result["paper"].items()}
        rows.append(row(f"  paper Table 1 ({result['model'].upper()})", paper))
    return "\n".join(rows)
