"""Evaluate a trained run as in the paper (section 4.2-4.3): fidelity, cosine similarity, SSIM and classifier
accuracy of the reconstructions, averaged over a split, with the no-circuit baselines beside the model.

Masks for evaluation are keyed by (``mask_seed``, :data:`EVAL_MASK_EPOCH`, image index) and depend on nothing
else, so QMAE and QAE with the same patch grid get the same mask for every image, as the paper requires.
Two backends: ``exact`` (the diagonal of the output density matrix and the SWAP-test <Z>, both exact) and
``aer_simulator`` (counts of the reconstruction circuit and of the SWAP-test ancilla with ``shots``).
:func:`score` is the one place a reconstruction becomes numbers; ``jobs fetch`` calls it too.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from qmae_qiskit.errors import QMAEError
from qmae_qiskit.evaluate import baselines as bl
from qmae_qiskit.evaluate.metrics import (
    cosine,
    counts_to_probabilities,
    image_scores,
    probabilities_to_amplitudes,
    probabilities_to_image,
    pure_state_fidelity,
    summarize,
    swap_test_fidelity,
)
from qmae_qiskit.io import atomic_write_json
from qmae_qiskit.model.config import QMAEConfig
from qmae_qiskit.model.masking import EVAL_MASK_EPOCH, eval_masks
from qmae_qiskit.simulate import exact

EVAL_BACKENDS = ("exact", "aer_simulator")
SPLITS = ("test", "train")
METRICS = ("fidelity", "cs", "ssim", "accuracy")
EVAL_FILE = "eval.json"
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


# ------------------------------------------------------------------------------------------- scoring
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
        from qmae_qiskit.evaluate.classifier import predict

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
        from qmae_qiskit.evaluate.classifier import predict

        out["accuracy"] = (predict(classifier, filled) == labels.long()).double()
    return out


def aggregate(per_image: dict[str, torch.Tensor]) -> dict[str, dict]:
    """Mean, std, standard error and count of every metric, in :data:`METRICS` order."""
    return {k: summarize(per_image[k]) for k in METRICS if k in per_image}


# ---------------------------------------------------------------------------------------- backends
def exact_outputs(
    theta: torch.Tensor,
    x_masked: torch.Tensor,
    clean: torch.Tensor,
    cfg: QMAEConfig,
    batch_size: int = 2048,
    progress: Callable[[int], None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact (probabilities (N, L*L), fidelities (N,)) in batches."""
    probs, fids = [], []
    theta = theta.detach().to(torch.float64)
    with torch.no_grad():
        U = exact.model_unitary(theta, cfg)  # independent of the images: built once for every batch
        for s in range(0, x_masked.shape[0], batch_size):
            xm, xc = x_masked[s : s + batch_size], clean[s : s + batch_size]
            probs.append(exact.reconstruct(theta, xm, cfg, U))
            fids.append(exact.fidelity(theta, xm, xc, cfg, U))
            if progress:
                progress(xm.shape[0])
    return torch.cat(probs), torch.cat(fids)


def aer_outputs(
    theta: torch.Tensor,
    x_masked: torch.Tensor,
    clean: torch.Tensor,
    cfg: QMAEConfig,
    shots: int,
    seed: int = 0,
    batch_size: int = 64,
    progress: Callable[[int], None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sampled (frequencies (N, L*L), SWAP-test <Z> estimates (N,)) from Aer with ``shots`` per circuit."""
    from qiskit import ClassicalRegister, transpile
    from qiskit_aer import AerSimulator

    from qmae_qiskit.model.circuits import parameter_values, reconstruction_circuit, training_circuit

    if shots < 1:
        raise QMAEError(f"shots must be positive, got {shots}")
    sim = AerSimulator(seed_simulator=seed)
    rec = transpile(reconstruction_circuit(cfg, measure=True), sim, optimization_level=0)
    swap = training_circuit(cfg)
    swap.add_register(ClassicalRegister(1, "anc"))
    swap.measure(swap.metadata["ancilla"], 0)
    swap = transpile(swap, sim, optimization_level=0)

    def run(circuit, values):  # one parameter sweep, one counts dict per row of ``values``
        binds = {p: values[:, j].tolist() for j, p in enumerate(circuit.parameters)}
        counts = sim.run(circuit, parameter_binds=[binds], shots=shots).result().get_counts()
        return counts if isinstance(counts, list) else [counts]

    probs, fids = [], []
    for s in range(0, x_masked.shape[0], batch_size):
        xm, xc = x_masked[s : s + batch_size], clean[s : s + batch_size]
        probs.extend(counts_to_probabilities(c, cfg.n_qubits) for c in run(rec, parameter_values(rec, theta, xm)))
        fids.extend(swap_test_fidelity(c) for c in run(swap, parameter_values(swap, theta, xm, xc)))
        if progress:
            progress(xm.shape[0])
    return torch.stack(probs), torch.tensor(fids, dtype=torch.float64)


# ------------------------------------------------------------------------------------------ evaluate
@dataclass
class EvalData:
    """Images, labels and source indices of the split being scored, with the training images for the fills."""

    images: torch.Tensor
    labels: torch.Tensor
    indices: torch.Tensor
    train_images: torch.Tensor


def load_eval_data(data_dir: str | Path | None, split: str, image_size: int, limit: int | None) -> EvalData:
    from qmae_qiskit.data import load_mnist

    if split not in SPLITS:
        raise QMAEError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    if limit is not None and limit < 1:
        raise QMAEError(f"--limit must be positive, got {limit}")
    train = load_mnist(data_dir, train=True, image_size=image_size)
    data = train if split == "train" else load_mnist(data_dir, train=False, image_size=image_size)
    if limit is not None:
        data = data.subset(slice(0, limit))
    return EvalData(data.images, data.labels, data.indices, train.images)


def evaluate_baselines(
    cfg: QMAEConfig, ratio: float, data: EvalData, classifier: torch.nn.Module | None, mask_seed: int = 0
) -> dict[str, dict]:
    """Scores of the three no-circuit fills on ``data`` with the evaluation masks."""
    patch_idx = eval_masks(cfg, ratio, data.indices, mask_seed)
    stats = bl.fit(data.train_images, cfg)
    out = {}
    for name in bl.BASELINES:
        filled = bl.fill(name, data.images, patch_idx, cfg, stats)
        out[name] = {
            "label": bl.LABELS[name],
            "description": bl.DESCRIPTIONS[name],
            **aggregate(score_images(filled, data.images, data.labels, classifier)),
        }
    return out


def find_classifier(run_dir: Path, explicit: str | Path | None) -> Path:
    """``explicit``, else the nearest ``classifier/`` folder beside the run or above it, else runs/classifier."""
    from qmae_qiskit.evaluate.classifier import exists

    if explicit is not None:
        return Path(explicit)
    for parent in [run_dir.parent, *run_dir.parent.parents][:3]:
        if exists(parent / "classifier"):
            return parent / "classifier"
    return Path("runs/classifier")


def evaluate(
    run_dir: str | Path,
    split: str = "test",
    limit: int | None = None,
    backend: str = "exact",
    shots: int = 4096,
    data_dir: str | Path | None = None,
    classifier_dir: str | Path | None = None,
    use_classifier: bool = True,
    baselines: bool = True,
    mask_seed: int = 0,
    seed: int = 0,
    out: str | Path | None = None,
    progress: bool = True,
    data: EvalData | None = None,
) -> dict:
    """Score the run in ``run_dir`` on ``split``; writes ``eval.json`` (or ``out``) and returns the same dict."""
    from tqdm.auto import tqdm

    from qmae_qiskit.train.runs import load_trained

    if backend not in EVAL_BACKENDS:
        raise QMAEError(f"unknown backend {backend!r} for evaluate; use one of {', '.join(EVAL_BACKENDS)}")
    t0 = time.perf_counter()
    run_dir = Path(run_dir)
    tm = load_trained(run_dir)
    cfg = tm.cfg
    if data is None:
        data = load_eval_data(data_dir if data_dir is not None else tm.data_dir, split, cfg.image_size, limit)
    clf, clf_info, clf_path = None, None, None
    if use_classifier:
        from qmae_qiskit.evaluate.classifier import load

        clf_path = find_classifier(run_dir, classifier_dir)
        clf, clf_info = load(clf_path)
    model = tm.module()
    patch_idx = eval_masks(cfg, tm.mask_ratio, data.indices, mask_seed)
    with torch.no_grad():
        x_masked = model.masked_inputs(data.images, patch_idx)
    clean = data.images.reshape(len(data.images), -1).to(torch.float64)
    N = len(data.images)
    bar = tqdm(total=N, desc=f"evaluate {tm.kind} ({backend})", unit="img", disable=not progress)
    t1 = time.perf_counter()
    if backend == "exact":
        probs, fids = exact_outputs(tm.theta, x_masked, clean, cfg, progress=bar.update)
    else:
        probs, fids = aer_outputs(tm.theta, x_masked, clean, cfg, shots, seed=seed, progress=bar.update)
    bar.close()
    per_image = score(probs, fids, data.images, data.labels, clf)
    t2 = time.perf_counter()
    result = {
        "run": str(run_dir),
        "model": tm.kind,
        "mask_ratio": tm.mask_ratio,
        "config": cfg.model_dump(),
        "step": tm.step,
        "finished": tm.finished,
        "split": split,
        "n_images": N,
        "limit": limit,
        "backend": backend,
        "shots": shots if backend != "exact" else None,
        "mask_seed": mask_seed,
        "mask_epoch": EVAL_MASK_EPOCH,
        "pixel_scaling": PIXEL_SCALING,
        "classifier": None
        if clf_info is None
        else {
            "path": str(clf_path),
            "clean_test_accuracy": clf_info.get("test_accuracy"),
            "n_train": clf_info.get("n_train"),
        },
        "metrics": aggregate(per_image),
        "baselines": evaluate_baselines(cfg, tm.mask_ratio, data, clf, mask_seed) if baselines else None,
        "paper": PAPER_TABLE1.get(tm.kind) if math.isclose(tm.mask_ratio, 0.25) else None,
        "seconds": {"model": round(t2 - t1, 3), "total": round(time.perf_counter() - t0, 3)},
    }
    atomic_write_json(Path(out) if out is not None else run_dir / EVAL_FILE, result)
    return result


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
