"""The judge of reconstructions: torchvision's ResNet18 adapted to 16x16 one-channel MNIST (paper section 4.3).

Adaptation as in the paper: the first max-pool is an identity (a 16x16 input would otherwise shrink to 4x4 before
the first residual stage); the first convolution takes one channel; the head has 10 classes. The classifier sees
images through :func:`qmae_qiskit.evaluate.metrics.to_pixels` both when it is trained (clean images) and when it judges
reconstructions, so both pass through the same pixel scaling. Weights are a cache in a folder
(``classifier.pt`` + ``classifier.json``), never committed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn
from tqdm.auto import tqdm

from qmae_qiskit.data import load_mnist
from qmae_qiskit.device import deterministic_cuda, resolve_device, torch_threads
from qmae_qiskit.errors import QMAEError
from qmae_qiskit.evaluate.metrics import to_pixels
from qmae_qiskit.evaluate.small_maps import use_window_convs
from qmae_qiskit.io import atomic_write_with
from qmae_qiskit.records import UnversionedBefore, load_record, save_record

WEIGHTS, INFO = "classifier.pt", "classifier.json"


def resnet18_small(num_classes: int = 10, recipe: int = 3) -> nn.Module:
    """ResNet18 with a one-channel stem and the first max-pool replaced by identity. From recipe 3 on, its
    one-pixel convolutions run as matrix products (:mod:`qmae_qiskit.evaluate.small_maps`); the function and the
    parameters are the same for every recipe."""
    from torchvision.models import resnet18  # lazy: torchvision adds ~3 s

    model = resnet18(weights=None, num_classes=num_classes)
    model.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    model.maxpool = nn.Identity()
    return use_window_convs(model) if recipe >= 3 else model


def prepare(images: torch.Tensor) -> torch.Tensor:
    """(N, L, L) non-negative images of any scale -> (N, 1, L, L) float32 classifier input in [0, 1]."""
    return to_pixels(images.reshape(images.shape[0], -1)).reshape(images.shape[0], 1, *images.shape[-2:]).float()


def random_shift(x: torch.Tensor, gen: torch.Generator, max_shift: int = 1) -> torch.Tensor:
    """Each image (B, C, H, W) moved by up to ``max_shift`` pixels in x and y (zero fill): a mild augmentation
    against over-fitting a few thousand digits (without it: 99.4 % train, 95.7 % test after 5 epochs)."""
    B, _, H, W = x.shape
    padded = nn.functional.pad(x, (max_shift,) * 4)
    dy = torch.randint(0, 2 * max_shift + 1, (B, 1), generator=gen)
    dx = torch.randint(0, 2 * max_shift + 1, (B, 1), generator=gen)
    rows = (dy + torch.arange(H))[:, :, None]  # (B, H, 1)
    cols = (dx + torch.arange(W))[:, None, :]  # (B, 1, W)
    return padded.permute(0, 2, 3, 1)[torch.arange(B)[:, None, None], rows, cols].permute(0, 3, 1, 2)


TRAIN_THREADS = 1  # every classifier trains on one thread: the same weights from a CLI, reproduce or a worker
RECIPES = {  # recorded in classifier.json (v1, recorded as nothing: the caller's threads, foreach Adam)
    2: "v2: one torch thread, fused Adam",
    3: "v3: one torch thread, fused Adam, one-pixel convolutions as matrix products",
}
RECIPE = RECIPES[3]


def recipe_of(info: dict[str, Any]) -> int:
    """The recipe number a classifier.json records (1 for the records that predate the field)."""
    text = info.get("recipe") or "v1"
    return int(text[1 : text.index(":")] if ":" in text else text[1:])


def setting_diffs(info: dict[str, Any], settings: dict[str, Any]) -> list[str]:
    """Where a cached classifier's info differs from the settings asked for ("key: cached -> asked")."""
    cached = {**info, "recipe": recipe_of(info)}
    return [f"{k}: {cached[k]} -> {v}" for k, v in settings.items() if k in cached and cached[k] != v]


@dataclass
class TrainResult:
    model: nn.Module
    info: dict


@dataclass(frozen=True)
class ClassifierSettings:
    """The training recipe of :func:`train_classifier`, one value so the recipe travels as a unit (and is
    recorded in ``classifier.json`` field by field)."""

    epochs: int = 5
    batch_size: int = 128
    lr: float = 2e-3
    seed: int = 0
    augment_shift: int = 1
    recipe: int = 3  # 2 reproduces the classifiers recorded as "v2" (results/sweeps/ablation)


def train_classifier(
    images: torch.Tensor,
    labels: torch.Tensor,
    settings: ClassifierSettings = ClassifierSettings(),
    progress: bool = True,
    device: str | torch.device = "cpu",
) -> TrainResult:
    """Adam + one-cycle schedule on clean images (N, L, L), with the recipe in ``settings``.

    The same weights for a given seed whatever the caller's thread count: the training (and the BatchNorm
    recalibration, which also sums over images) runs on :data:`TRAIN_THREADS` threads. On CUDA it is
    deterministic too (cuDNN's deterministic kernels) but not equal to the CPU's weights.
    """
    if settings.epochs < 1 or settings.batch_size < 1:
        raise QMAEError(f"epochs and batch size must be positive, got {settings.epochs} and {settings.batch_size}")
    if settings.recipe not in RECIPES:
        raise QMAEError(f"unknown classifier recipe {settings.recipe}; use one of {', '.join(map(str, RECIPES))}")
    if images.shape[0] != labels.shape[0] or images.shape[0] == 0:
        raise QMAEError(
            f"need as many labels as images (and at least one), got {images.shape[0]} and {labels.shape[0]}"
        )
    dev = resolve_device(device)
    t0 = time.perf_counter()
    with torch_threads(TRAIN_THREADS), deterministic_cuda(dev):
        torch.manual_seed(settings.seed)
        model = resnet18_small(recipe=settings.recipe).to(dev)
        x, y = prepare(images), labels.long()
        gen = torch.Generator().manual_seed(settings.seed)
        losses = _fit(model, x, y, gen, settings, progress)
        recalibrate_batchnorm(model, x[torch.randperm(len(x), generator=gen)[:4096]].to(dev))
    info = {
        "architecture": "resnet18, 1-channel conv1, maxpool=identity, 10 classes",
        "epochs": settings.epochs,
        "batch_size": settings.batch_size,
        "lr": settings.lr,
        "seed": settings.seed,
        "augment_shift": settings.augment_shift,
        "recipe": RECIPES[settings.recipe],
        "device": dev.type,
        "n_train": len(x),
        "image_size": int(images.shape[-1]),
        "train_loss": losses,
        "train_seconds": round(time.perf_counter() - t0, 1),
        "input_scaling": "metrics.to_pixels (divide by the image's maximum)",
    }
    return TrainResult(model, info)


def _fit(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, gen: torch.Generator, s: ClassifierSettings, progress: bool
) -> list[float]:
    """The training loop; batches are drawn and shifted on the CPU (``gen``) and moved to the model's device,
    so the data order is the same on every device. Returns the mean loss of each epoch."""

    dev = next(model.parameters()).device
    steps = s.epochs * ((len(x) + s.batch_size - 1) // s.batch_size)
    opt = torch.optim.Adam(model.parameters(), lr=s.lr, fused=True)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=s.lr, total_steps=steps)
    y = y.to(dev)
    bar = tqdm(total=steps, desc="classifier", disable=not progress, unit="step")
    losses = []
    for epoch in range(s.epochs):
        model.train()
        perm = torch.randperm(len(x), generator=gen)
        total = torch.zeros((), dtype=torch.float64, device=dev)
        count = 0
        for start in range(0, len(x), s.batch_size):
            rows = perm[start : start + s.batch_size]
            bar.update(1)
            if len(rows) < 2:  # BatchNorm needs two samples
                continue
            xb = random_shift(x[rows], gen, s.augment_shift) if s.augment_shift > 0 else x[rows]
            loss = nn.functional.cross_entropy(model(xb.to(dev, non_blocking=True)), y[rows.to(dev)])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.detach().double() * len(rows)  # no host sync per step on a GPU
            count += len(rows)
        losses.append(float(total) / max(count, 1))
        bar.set_postfix(epoch=epoch + 1, loss=f"{losses[-1]:.4f}")
    bar.close()
    return losses


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, x: torch.Tensor, batch_size: int = 512) -> None:
    """Replace BatchNorm's running statistics by exact averages over ``x`` with the final weights.

    The running statistics are an exponential average over training steps with changing weights; after a short
    training they lag behind, and eval mode misclassifies. One forward pass over training images fixes that.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: equal weight to every batch
    model.train()
    for start in range(0, len(x), batch_size):
        if len(x[start : start + batch_size]) > 1:
            model(x[start : start + batch_size])
    for m, mom in zip(bns, saved):
        m.momentum = mom
    model.eval()


@torch.inference_mode()
def predict(model: nn.Module, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Predicted labels (N,) for images (N, L, L) of any non-negative scale (see :func:`prepare`).

    Runs in channels-last memory format (the model is converted once, in place): oneDNN's convolutions are about
    twice as fast that way on CPU, and the logits differ from the default layout only by float32 rounding.
    The logits do not depend on the thread count (inference splits no sum between threads; tested). On a GPU
    the model stays where it is and each batch is moved to it; the labels come back on the CPU.
    """
    model.eval()
    if not getattr(model, "_qmae_channels_last", False):
        model.to(memory_format=torch.channels_last)
        model._qmae_channels_last = True  # type: ignore[assignment]
    dev = next(model.parameters()).device
    out = []
    for start in range(0, images.shape[0], batch_size):
        x = prepare(images[start : start + batch_size]).to(dev).contiguous(memory_format=torch.channels_last)
        out.append(model(x).argmax(1).cpu())
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)


def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of images classified as their label."""
    return float((predict(model, images) == labels.long()).double().mean())


class ClassifierInfo(UnversionedBefore):
    """``classifier.json``: how the cached classifier was trained and its clean test accuracy."""

    SCHEMA: ClassVar[str] = "qmae-qiskit/classifier"
    VERSION: ClassVar[int] = 1
    WHAT: ClassVar[str] = "classifier info"

    architecture: str
    epochs: int
    batch_size: int
    lr: float
    seed: int
    augment_shift: int
    recipe: str | None = None  # left out of the records of the first recipe
    device: str | None = None
    n_train: int
    image_size: int
    train_loss: list[float]
    train_seconds: float
    input_scaling: str
    n_test: int | None = None
    test_accuracy: float | None = None

    OMITTED_WHEN_EMPTY: ClassVar[tuple[str, ...]] = ("recipe", "device")

    def info(self) -> dict[str, Any]:
        """The fields alone, as the callers read them (no schema or provenance)."""
        return self.model_dump(exclude={"record_schema", "schema_version", "provenance"})


def save(folder: str | Path, result: TrainResult) -> Path:
    """Write ``classifier.pt`` and ``classifier.json`` atomically (weights first, so info implies weights)."""
    folder = Path(folder)
    info = ClassifierInfo.model_validate(result.info)  # a bad field fails before anything is written
    atomic_write_with(folder / WEIGHTS, lambda fh: torch.save(result.model.state_dict(), fh))
    save_record(info, folder / INFO)
    return folder


def exists(folder: str | Path) -> bool:
    folder = Path(folder)
    return (folder / WEIGHTS).is_file() and (folder / INFO).is_file()


def load(folder: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """The cached classifier in ``folder`` (on ``device``) and its info; a clear error if there is none."""
    folder = Path(folder)
    if not exists(folder):
        raise QMAEError(
            f"no trained classifier in {folder} (expected {WEIGHTS} and {INFO}); "
            f"train one with `qmae-qiskit classifier train --out {folder}`"
        )
    info = load_record(ClassifierInfo, folder / INFO).info()
    model = resnet18_small(recipe=recipe_of(info))  # a classifier predicts as it was trained
    try:
        model.load_state_dict(torch.load(folder / WEIGHTS, map_location="cpu", weights_only=True))
    except Exception as exc:
        raise QMAEError(f"cannot read classifier weights {folder / WEIGHTS}: {exc}") from exc
    model.to(resolve_device(device)).eval()
    return model, info


def train_and_cache(
    data_dir: str | Path | None,
    out: str | Path,
    image_size: int = 16,
    limit: int | None = None,
    test_limit: int | None = None,
    progress: bool = True,
    device: str | torch.device = "cpu",
    **recipe: Any,
) -> dict:
    """Train on the MNIST training split at ``image_size`` (the first ``limit`` images), score the clean test
    split, cache in ``out``. ``recipe``: the fields of :class:`ClassifierSettings`."""

    dev = resolve_device(device)  # before anything is read or written: a missing GPU is one line
    train = load_mnist(data_dir, train=True, image_size=image_size, limit=limit)
    test = load_mnist(data_dir, train=False, image_size=image_size, limit=test_limit)
    result = train_classifier(train.images, train.labels, ClassifierSettings(**recipe), progress, dev)
    result.info["n_test"] = len(test)
    result.info["test_accuracy"] = accuracy(result.model, test.images, test.labels)
    save(out, result)
    return result.info
