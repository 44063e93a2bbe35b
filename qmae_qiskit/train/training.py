"""The training loop (paper Algorithm 1 with mini-batches): Adam on 1 - <Z>, checkpoints, metrics, resume.

Determinism is by construction: the training subset is a seeded permutation of the data set, the order of
epoch e is a permutation seeded by (seed, e), and masks are keyed by (seed, e, sample index). So a checkpoint
only needs the step count, the parameters and Adam's state, and a resumed run ends with exactly the parameters
of an uninterrupted one. metrics.jsonl is truncated to the checkpoint's step on resume, so no step is lost or
written twice.

The loop costs what its kernel costs: an epoch's masks are drawn at once when it starts, step records are
buffered and written with each checkpoint, and checkpoints are written by a background thread
(:class:`qmae_qiskit.train.runs.RunWriter`) while the next step computes; the step after a checkpoint waits for
it before it counts as done, so a kill still loses at most one checkpoint interval.
"""

from __future__ import annotations

import hashlib
import math
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from qmae_qiskit.data import ImageSet, load_mnist
from qmae_qiskit.device import resolve_device
from qmae_qiskit.errors import QMAEError
from qmae_qiskit.model.masking import sample_mask_indices
from qmae_qiskit.simulate import exact
from qmae_qiskit.train.adam import Adam
from qmae_qiskit.train.models import ExactFidelity, MaskedAutoencoder, build_model, init_theta, init_token
from qmae_qiskit.train.plots import plot_loss
from qmae_qiskit.train.qnn import AerFidelity
from qmae_qiskit.train.runs import (
    CHECKPOINT_FILE,
    LOSS_PLOT_FILE,
    Checkpoint,
    RunSettings,
    RunWriter,
    check_resumable,
    create_run_dir,
    load_checkpoint,
    read_config,
    read_settings,
    save_checkpoint,
    truncate_metrics,
    update_settings,
)

VAL_MASK_EPOCH = 1_000_000  # masks of the validation images: one fixed draw, apart from every training epoch


@dataclass
class TrainData:
    """Training and validation images (validation may be empty)."""

    train: ImageSet
    val: ImageSet


@dataclass
class TrainResult:
    run_dir: Path
    settings: RunSettings
    model: MaskedAutoencoder
    start_step: int  # steps already done when this call began (0 for a fresh run)
    steps: int  # total steps done at the end
    last_loss: float | None
    last_epoch_fidelity: float | None  # mean training fidelity over the last epoch's steps run in this call
    val_fidelity: float | None
    seconds: float  # the training loop: steps, validation, metrics and checkpoints (not loss.png)
    records: list[dict[str, Any]]
    plot_seconds: float = 0.0  # writing loss.png after the loop


def select_data(data: ImageSet, settings: RunSettings) -> TrainData:
    """A seeded subset: ``train_samples`` for training, the next ``val_samples`` for validation."""
    need = settings.train_samples + settings.val_samples
    if len(data) < need:
        raise QMAEError(
            f"the data set has {len(data)} images but --train-images {settings.train_samples} + "
            f"--val-images {settings.val_samples} = {need}; ask for fewer"
        )
    perm = torch.randperm(len(data), generator=torch.Generator().manual_seed(int(settings.seed)))
    return TrainData(data.subset(perm[: settings.train_samples]), data.subset(perm[settings.train_samples : need]))


def load_training_data(settings: RunSettings, data_dir: str | Path | None, download: bool = False) -> TrainData:
    """MNIST training split at the run's image size, then :func:`select_data`."""
    data = load_mnist(data_dir, train=True, image_size=settings.config.image_size, download=download)
    return select_data(data, settings)


def data_fingerprint(data: TrainData) -> str:
    """A short hash of the training and validation images and their indices (a resume must see the same)."""

    h = hashlib.sha256()
    for part in (data.train, data.val):
        h.update(part.indices.numpy().astype("int64").tobytes())
        h.update(part.images.to(torch.float64).numpy().tobytes())
    return h.hexdigest()[:16]


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The sample order of one epoch: a permutation seeded by (seed, epoch) only."""
    sub = int(np.random.SeedSequence([int(seed), int(epoch), 0x5EED]).generate_state(1)[0])
    return torch.randperm(n, generator=torch.Generator().manual_seed(sub))


def initial_model(settings: RunSettings, train_images: torch.Tensor) -> MaskedAutoencoder:
    cfg = settings.config
    theta = init_theta(cfg, settings.theta_init, settings.seed, settings.theta_scale)
    token = None
    if settings.model == "qmae":
        token = init_token(cfg, settings.token_init, settings.seed, train_images, settings.token_value)
    return build_model(settings.model, cfg, theta, token)


def make_backend(settings: RunSettings, device: str = "cpu"):
    """The fidelity backend of a run: the exact simulator (its kernel on ``device``) or an EstimatorQNN on Aer."""

    if settings.backend == "exact":
        return ExactFidelity(settings.config, settings.precision, device)
    if device != "cpu":
        raise QMAEError(f"--device {device} is for --backend exact; training on Aer runs on the CPU (--device cpu)")

    return AerFidelity(
        settings.config,
        shots=settings.shots,
        noise_model=settings.noise_model,
        gradient=settings.gradient,
        input_gradients=settings.model == "qmae",
        seed=settings.seed,
    )


def make_optimizer(model: MaskedAutoencoder, settings: RunSettings) -> Adam:
    """Adam (:class:`qmae_qiskit.train.adam.Adam`: torch's update, without torch.optim's start-up cost)."""
    return Adam(model.parameters(), lr=settings.lr, betas=(settings.betas[0], settings.betas[1]))


@torch.no_grad()
def validation_fidelity(
    model: MaskedAutoencoder, val: ImageSet, settings: RunSettings, patch_idx: torch.Tensor | None = None
) -> float | None:
    """Mean exact fidelity on the validation images with fixed masks (epoch-independent, so epochs compare).

    ``patch_idx`` is :func:`validation_masks` (computed here if not given)."""
    if len(val) == 0:
        return None

    if patch_idx is None:
        patch_idx = validation_masks(val, settings)
    xm = model.masked_inputs(val.images, patch_idx)
    xc = val.images.reshape(len(val), -1).to(torch.float64)
    return float(exact.fidelity(model.theta.detach(), xm, xc, settings.config).mean())


def validation_masks(val: ImageSet, settings: RunSettings) -> torch.Tensor:
    """The validation images' masks: one fixed draw (epoch :data:`VAL_MASK_EPOCH`)."""
    return sample_mask_indices(settings.config, settings.mask_ratio, val.indices, settings.seed, epoch=VAL_MASK_EPOCH)


def _checkpoint(model: MaskedAutoencoder, opt: Adam, step: int, finished: bool) -> Checkpoint:
    token = model.token.detach() if model.token is not None else None
    return Checkpoint(step=step, theta=model.theta.detach(), token=token, optimizer=opt.state_dict(), finished=finished)


@dataclass(frozen=True)
class TrainOptions:
    """How one call trains, none of it written into config.json: a run trained one way can be continued another.

    ``resume`` continues the run's checkpoint; ``progress`` shows a bar; ``plot`` writes loss.png; ``device``
    (``auto``, ``cpu``, ``cuda``) is where the exact path's kernel runs: parameters, Adam and records stay on the
    CPU, so a run can be resumed on another device (float64 results agree within 1e-9)."""

    resume: bool = False
    progress: bool = True
    plot: bool = True
    device: str = "cpu"


def train(
    settings: RunSettings,
    run_dir: str | Path,
    data: TrainData | None = None,
    options: TrainOptions = TrainOptions(),
    *,
    data_dir: str | Path | None = None,
    download: bool = False,
    backend=None,
    on_step: Callable[[int, dict[str, Any]], None] | None = None,
) -> TrainResult:
    """Train (or continue) the run in ``run_dir``; returns when all ``settings.epochs`` are done.

    ``data`` defaults to MNIST from ``data_dir``. ``backend`` overrides :func:`make_backend` (tests).
    ``options``: :class:`TrainOptions` (resume, progress bar, loss plot, device).
    ``on_step(step, record)`` is called after each step's metrics line is written (tests use it to simulate a
    kill). Ctrl-C finishes the current step, writes a checkpoint and raises KeyboardInterrupt.
    """

    resume, plot = options.resume, options.plot
    dev = resolve_device(options.device).type  # a missing GPU is one line, before anything is read or written
    if options.device == "auto" and settings.backend != "exact":
        dev = "cpu"  # auto never moves Aer training; an explicit cuda there is refused with the fix
    run_dir = Path(run_dir)
    data, data_dir, stored, fingerprint = _training_data(settings, run_dir, data, data_dir, download, resume)
    model = initial_model(settings, data.train.images)
    model.set_backend(backend if backend is not None else make_backend(settings, dev))  # fails before any write
    opt = make_optimizer(model, settings)
    if resume:
        start, records = _resume(run_dir, settings, stored, model, opt)
    else:
        create_run_dir(run_dir, settings, data_dir, fingerprint)
        start, records = 0, []
        save_checkpoint(run_dir, _checkpoint(model, opt, 0, False))
    loop = _Loop(settings, data, model, opt, run_dir, records, start)
    t0 = time.perf_counter()
    _run_steps(loop, options.progress, on_step, plot)
    seconds = time.perf_counter() - t0
    t_plot = time.perf_counter()
    if plot:
        _plot(records, run_dir, settings)
    last = records[-1] if records else None
    return TrainResult(
        run_dir=run_dir,
        settings=settings,
        model=model,
        start_step=start,
        steps=loop.done,
        last_loss=None if last is None else last["loss"],
        last_epoch_fidelity=float(np.mean(loop.epoch_fids)) if loop.epoch_fids else None,
        val_fidelity=loop.val_fid,
        seconds=seconds,
        records=records,
        plot_seconds=time.perf_counter() - t_plot,
    )


def _training_data(
    settings: RunSettings,
    run_dir: Path,
    data: TrainData | None,
    data_dir: str | Path | None,
    download: bool,
    resume: bool,
) -> tuple[TrainData, str | Path | None, RunSettings | None, str]:
    """The images to train on (a resumed run's own data folder by default), checked against the settings and,
    when resuming, against the fingerprint of the images the run was trained on."""
    stored = None
    if resume:
        stored = read_settings(run_dir)
        check_resumable(stored, settings)
        record = read_config(run_dir)
        if data_dir is None:
            data_dir = record.data_dir
    if data is None:
        data = load_training_data(settings, data_dir, download)
    if len(data.train) != settings.train_samples:
        raise QMAEError(f"expected {settings.train_samples} training images, got {len(data.train)}")
    fingerprint = data_fingerprint(data)
    if resume and record.data_fingerprint not in (None, fingerprint):
        raise QMAEError(
            f"the images loaded from {data_dir} are not the ones run {run_dir} was trained on (the data "
            f"set changed?); pass the --data-dir it used ({record.data_dir})"
        )
    return data, data_dir, stored, fingerprint


def _resume(
    run_dir: Path, settings: RunSettings, stored: RunSettings | None, model: MaskedAutoencoder, opt: Adam
) -> tuple[int, list[dict[str, Any]]]:
    """Load the run's checkpoint into ``model`` and ``opt``; the step it reached and its metrics up to there."""
    ckpt = load_checkpoint(run_dir, stored)
    if ckpt.step > settings.total_steps:
        raise QMAEError(
            f"run {run_dir} has already done {ckpt.step} steps, more than --epochs "
            f"{settings.epochs} allows ({settings.total_steps}); pass --epochs "
            f"{math.ceil(ckpt.step / settings.steps_per_epoch)} or more"
        )
    with torch.no_grad():
        model.theta.copy_(ckpt.theta)
        if model.token is not None and ckpt.token is not None:
            model.token.copy_(ckpt.token)
    if ckpt.optimizer is not None:
        try:
            opt.load_state_dict(ckpt.optimizer)
        except (ValueError, KeyError, TypeError) as exc:
            raise QMAEError(f"checkpoint in {run_dir} has a damaged optimizer state ({exc}); train again") from exc
    start = ckpt.step
    if settings != stored:
        update_settings(run_dir, settings)
    if ckpt.path is not None and ckpt.path.name != CHECKPOINT_FILE:  # resumed from the previous checkpoint:
        bad = run_dir / CHECKPOINT_FILE  # keep the unreadable one aside, so that it never becomes "previous"
        if bad.exists():
            bad.replace(run_dir / f"{CHECKPOINT_FILE}.unreadable")
    return start, truncate_metrics(run_dir, start)


@dataclass
class _Loop:
    """What the step loop works on and carries from step to step."""

    settings: RunSettings
    data: TrainData
    model: MaskedAutoencoder
    opt: Adam
    run_dir: Path
    records: list[dict[str, Any]]
    done: int
    val_fid: float | None = None
    epoch_fids: list[float] = field(default_factory=list)
    order_epoch: int = -1
    order: torch.Tensor = field(default_factory=lambda: torch.empty(0, dtype=torch.long))
    epoch_masks: torch.Tensor = field(default_factory=lambda: torch.empty(0, dtype=torch.long))


def _run_steps(loop: _Loop, progress: bool, on_step: Callable[[int, dict[str, Any]], None] | None, plot: bool) -> None:
    """Steps ``loop.done`` .. the last, each record written with the next checkpoint (on a background thread)."""
    settings, total = loop.settings, loop.settings.total_steps
    val_masks = validation_masks(loop.data.val, settings) if len(loop.data.val) else None
    bar = _progress(total, loop.done, settings, progress)
    writer = RunWriter(loop.run_dir)
    pending: list[dict[str, Any]] = []  # step records not yet written (they go out with the next checkpoint)
    stop = _StopRequest()
    try:
        for step in range(loop.done, total):
            rec = _step(loop, step, writer, val_masks)
            pending.append(rec)
            loop.records.append(rec)
            done = loop.done = step + 1
            if done % settings.checkpoint_every == 0 or done == total:
                writer.submit(pending, _checkpoint(loop.model, loop.opt, done, done == total))
                pending = []
            bar.update(1)
            bar.set_postfix(
                loss=f"{rec['loss']:.4f}", fidelity=f"{rec['fidelity']:.4f}", epoch=rec["epoch"] + 1, refresh=False
            )
            if on_step is not None:
                on_step(done, rec)
            if stop.requested and done < total:
                writer.submit(pending, _checkpoint(loop.model, loop.opt, done, False))
                pending = []
                writer.wait()
                if plot:
                    _plot(loop.records, loop.run_dir, settings)
                raise KeyboardInterrupt(f"stopped after step {done} of {total}; checkpoint written")
        writer.submit(pending)
        writer.wait()
    except BaseException:
        _flush_quietly(writer, pending)  # a crash keeps the steps it did (resume truncates to the checkpoint)
        raise
    finally:
        stop.restore()
        bar.close()


def _step(loop: _Loop, step: int, writer: RunWriter, val_masks: torch.Tensor | None) -> dict[str, Any]:
    """One Adam step on the step's batch (the epoch's order and masks drawn at its first step); its record."""
    settings, B = loop.settings, loop.settings.batch_size
    epoch, pos = divmod(step, settings.steps_per_epoch)
    if epoch != loop.order_epoch:  # the epoch's order and all its masks at once
        loop.order, loop.order_epoch, loop.epoch_fids = (
            epoch_order(len(loop.data.train), settings.seed, epoch),
            epoch,
            [],
        )
        loop.epoch_masks = sample_mask_indices(
            settings.config, settings.mask_ratio, loop.data.train.indices[loop.order], settings.seed, epoch
        )
    rows = loop.order[pos * B : (pos + 1) * B]
    images, patch_idx = loop.data.train.images[rows], loop.epoch_masks[pos * B : (pos + 1) * B]
    ts = time.perf_counter()
    loop.opt.zero_grad(set_to_none=True)
    loss, fid = loop.model.loss(images, patch_idx)
    loss.backward()
    loop.opt.step()
    writer.wait()  # the previous checkpoint is on disk before this step counts as done
    rec: dict[str, Any] = {
        "step": step + 1,
        "epoch": epoch,
        "batch": pos,
        "samples": len(rows),
        "loss": float(loss.detach()),
        "fidelity": float(fid.detach().mean()),
        "seconds": round(time.perf_counter() - ts, 6),
    }
    loop.epoch_fids.append(rec["fidelity"])
    if pos == settings.steps_per_epoch - 1:
        loop.val_fid = validation_fidelity(loop.model, loop.data.val, settings, val_masks)
        if loop.val_fid is not None:
            rec["val_fidelity"] = loop.val_fid
    return rec


def _flush_quietly(writer: RunWriter, pending: list[dict[str, Any]]) -> None:
    """Finish the write in flight and write the buffered step records, without hiding the error in progress."""
    try:
        writer.submit(pending)
        writer.wait()
    except Exception:
        pass


def _plot(records: list[dict[str, Any]], run_dir: Path, settings: RunSettings) -> None:

    plot_loss(
        records,
        run_dir / LOSS_PLOT_FILE,
        title=f"{settings.model.upper()} ({settings.backend}), {settings.mask_ratio:.1%} mask",
    )


class _StopRequest:
    """First Ctrl-C: finish the current step, write a checkpoint, stop. A second Ctrl-C stops at once."""

    def __init__(self) -> None:

        self.requested = False
        self._old = None
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def restore(self) -> None:

        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
            self._old = None


def _progress(total: int, start: int, settings: RunSettings, enabled: bool):

    return tqdm(
        total=total,
        initial=start,
        disable=not enabled,
        unit="step",
        dynamic_ncols=True,
        desc=f"{settings.model}/{settings.backend}",
    )
