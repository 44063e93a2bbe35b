"""Run folders: what a training run writes, and how every other command reads a trained model back.

A run folder ``runs/<name>/`` holds::

    config.json       a :class:`RunRecord` (settings, data folder and fingerprint, provenance): enough to
                      rebuild the model and the exact data order
    metrics.jsonl     one JSON object per optimizer step (step, epoch, loss, fidelity, ...), written in chunks
                      when a checkpoint is written (and when training stops), fsynced before the checkpoint
    checkpoint.pt     the latest checkpoint (parameters, Adam state, step), replaced atomically
    checkpoint.prev.pt  the one before it: if the newest cannot be read, training resumes from this one
    loss.png          the training-loss curve (paper Fig. 8 style)

The data order and the masks are functions of (seed, epoch, sample index), so a checkpoint needs no RNG state:
the step count says where in which epoch to continue. ``load_trained`` is the stable entry point for
evaluation and hardware submission.
"""

from __future__ import annotations

import io
import math
import os
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

from qmae_qiskit.errors import QMAEError, QMAEWarning, one_line
from qmae_qiskit.io import atomic_write_bytes, atomic_write_text
from qmae_qiskit.model.config import QMAEConfig
from qmae_qiskit.model.masking import patches_for_ratio
from qmae_qiskit.records import Line, Record, dumps_lines, legacy_provenance, load_record, parse_lines, save_record
from qmae_qiskit.train.models import build_model

FORMAT = 1  # checkpoint.pt format
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
CHECKPOINT_FILE = "checkpoint.pt"
PREVIOUS_CHECKPOINT_FILE = "checkpoint.prev.pt"
LOSS_PLOT_FILE = "loss.png"

MODELS = ("qmae", "qae")
BACKENDS = ("exact", "aer_simulator")
GRADIENTS = ("auto", "adjoint", "param-shift")

# settings that may change when a run is resumed (training longer, a different checkpoint interval)
RESUMABLE_CHANGES = ("epochs", "checkpoint_every")


class RunSettings(BaseModel):
    """Everything that defines a training run; two runs with equal settings compute the same parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: Literal["qmae", "qae"] = "qmae"
    backend: Literal["exact", "aer_simulator"] = "exact"
    config: QMAEConfig = Field(default_factory=QMAEConfig)
    mask_ratio: float = 0.25
    epochs: int = Field(1, ge=1)
    batch_size: int = Field(64, ge=1)
    train_samples: int = Field(1000, ge=1)
    val_samples: int = Field(0, ge=0, description="held-out images scored (exact fidelity) after each epoch")
    lr: float = Field(0.01, gt=0)
    betas: tuple[float, float] = (0.9, 0.999)
    seed: int = 0
    theta_init: Literal["uniform", "normal"] = "uniform"
    theta_scale: float = Field(0.1, gt=0, description="standard deviation of theta for theta_init='normal'")
    token_init: Literal["mean", "uniform", "constant"] = "mean"
    token_value: float = Field(0.5, description="token pixel value for token_init='constant'")
    checkpoint_every: int = Field(10, ge=1)
    shots: int | None = Field(None, ge=1)
    noise_model: str | None = None
    gradient: Literal["auto", "adjoint", "param-shift"] = "auto"
    precision: Literal["float64", "float32"] = Field(
        "float64", description="exact backend: simulate in complex128 (exact) or complex64 (faster, ~1e-6)"
    )

    @model_validator(mode="after")
    def _check(self) -> RunSettings:

        patches_for_ratio(self.config, self.mask_ratio)  # raises a one-line error if the grid cannot make it
        for b in self.betas:
            if not 0 <= b < 1:
                raise ValueError(f"Adam betas must be in [0, 1), got {self.betas}")
        if self.backend == "exact" and (self.shots is not None or self.noise_model is not None):
            raise ValueError("--shots and --noise-model need --backend aer_simulator (the exact backend is noiseless)")
        if self.model == "qae" and self.config.token != "shared":
            raise ValueError("--token positional needs --model qmae (QAE fills masked patches with zeros, no token)")
        if self.backend != "exact" and self.precision != "float64":
            raise ValueError("--precision float32 is for --backend exact only")
        return self

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(self.train_samples / self.batch_size)

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    def default_name(self) -> str:
        """A readable folder name: model, backend, image size, mask ratio, ansatz layers (when not 1) and kind
        (when not all-pairs), token form (when not shared), seed."""
        layers = f"-l{self.config.layers}" if self.config.layers != 1 else ""
        layers += f"-{self.config.ansatz}" if self.config.ansatz != "all-pairs" else ""
        layers += "-tpos" if self.config.token == "positional" else ""
        return f"{self.model}-{self.backend}-L{self.config.image_size}-m{self.mask_ratio:g}{layers}-s{self.seed}"


@dataclass
class Checkpoint:
    """State after ``step`` completed optimizer steps: enough to continue bit-for-bit."""

    step: int
    theta: torch.Tensor
    token: torch.Tensor | None
    optimizer: dict[str, Any] | None = None
    finished: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None  # the file it was read from

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "step": self.step,
            "theta": self.theta.detach().clone(),
            "token": None if self.token is None else self.token.detach().clone(),
            "optimizer": self.optimizer,
            "finished": self.finished,
            "extra": self.extra,
        }


@dataclass(frozen=True)
class TrainedModel:
    """A trained (or partly trained) model read back from a run folder."""

    run_dir: Path
    settings: RunSettings
    theta: torch.Tensor  # float64 (n_theta,)
    token: torch.Tensor | None  # float64 (cfg.n_token,) for QMAE, None for QAE
    step: int
    finished: bool
    data_dir: str | None = None

    @property
    def cfg(self) -> QMAEConfig:
        return self.settings.config

    @property
    def kind(self) -> str:
        return self.settings.model

    @property
    def mask_ratio(self) -> float:
        return self.settings.mask_ratio

    @property
    def seed(self) -> int:
        return self.settings.seed

    @property
    def backend(self) -> str:
        return self.settings.backend

    def module(self):
        """The model as a :class:`qmae_qiskit.train.models.MaskedAutoencoder` holding these parameters."""

        return build_model(self.settings.model, self.cfg, theta=self.theta, token=self.token)


# ------------------------------------------------------------------------------------------------ config.json
class RunRecord(Record):
    """config.json: the settings that define a run, where its data came from and a fingerprint of that data."""

    SCHEMA: ClassVar[str] = "qmae-qiskit/run-config"
    VERSION: ClassVar[int] = 2
    WHAT: ClassVar[str] = "run config"

    settings: RunSettings
    data_dir: str | None = None
    data_fingerprint: str | None = None

    @classmethod
    def upgrade(cls, raw: dict[str, Any], version: int | None) -> dict[str, Any] | None:
        """Format 1 (``{"format": 1, "settings", "data_dir", "data_fingerprint", "created"}``) reads as version 2."""
        if raw.get("schema") is None and raw.get("format") == 1 and "settings" in raw:
            return {
                "schema": cls.SCHEMA,
                "schema_version": cls.VERSION,
                "provenance": legacy_provenance(raw.get("created")),
                "settings": raw["settings"],
                "data_dir": raw.get("data_dir"),
                "data_fingerprint": raw.get("data_fingerprint"),
            }
        return None


def create_run_dir(
    run_dir: str | Path, settings: RunSettings, data_dir: str | Path | None = None, data_fingerprint: str | None = None
) -> Path:
    """Create a new run folder with its config.json; refuses to touch an existing non-empty folder.

    ``data_fingerprint`` (see :func:`qmae_qiskit.train.training.data_fingerprint`) lets a resume check that it
    trains on the same images.
    """
    run_dir = Path(run_dir)
    if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
        raise QMAEError(
            f"run folder {run_dir} already exists; pass --resume to continue it, or choose another --name / --out"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    record = RunRecord(
        settings=settings, data_dir=None if data_dir is None else str(data_dir), data_fingerprint=data_fingerprint
    )
    save_record(record, run_dir / CONFIG_FILE)
    return run_dir


def read_config(run_dir: str | Path) -> RunRecord:
    """The run's config.json as a validated :class:`RunRecord` (a format-1 file is upgraded on read)."""
    path = Path(run_dir) / CONFIG_FILE
    if not Path(run_dir).is_dir():
        raise QMAEError(f"run folder {run_dir} does not exist; pass the folder a `train` run wrote (runs/<name>)")
    if not path.is_file():
        raise QMAEError(f"{path} is missing: {run_dir} is not a training run folder")
    return load_record(RunRecord, path, "the run folder is damaged")


def read_settings(run_dir: str | Path) -> RunSettings:
    return read_config(run_dir).settings


def settings_differences(stored: RunSettings, wanted: RunSettings) -> list[str]:
    """Human-readable 'key: stored -> wanted' for every setting that differs (nested config flattened)."""
    a, b = stored.model_dump(mode="json"), wanted.model_dump(mode="json")
    diffs = []
    for key in a:
        if key == "config":  # a field at its default may be left out of the dump (layers = 1)
            ca, cb = stored.config, wanted.config
            for ck in type(ca).model_fields:
                if getattr(ca, ck) != getattr(cb, ck):
                    diffs.append(f"{ck}: {getattr(ca, ck)} -> {getattr(cb, ck)}")
        elif a[key] != b[key]:
            diffs.append(f"{key}: {a[key]} -> {b[key]}")
    return diffs


def check_resumable(stored: RunSettings, wanted: RunSettings) -> None:
    """Raise unless ``wanted`` equals ``stored`` up to the settings a resume may change."""
    diffs = [d for d in settings_differences(stored, wanted) if d.split(":")[0] not in RESUMABLE_CHANGES]
    if diffs:
        raise QMAEError(
            f"--resume with a different configuration ({'; '.join(diffs)}); drop those options to "
            f"continue the run as it was, or start a new run with another --name"
        )


def update_settings(run_dir: str | Path, settings: RunSettings) -> None:
    """Rewrite config.json with new settings (only after :func:`check_resumable`)."""
    record = read_config(run_dir)
    save_record(record.model_copy(update={"settings": settings}), Path(run_dir) / CONFIG_FILE)


# ---------------------------------------------------------------------------------------------- checkpoints
def checkpoint_bytes(ckpt: Checkpoint) -> bytes:
    """The checkpoint file's contents (a snapshot: later changes to the tensors do not reach it)."""
    buf = io.BytesIO()
    torch.save(ckpt.to_dict(), buf)
    return buf.getvalue()


def write_checkpoint_bytes(run_dir: str | Path, data: bytes) -> Path:
    """Make ``data`` the newest checkpoint; the newest so far becomes checkpoint.prev.pt (both renames atomic)."""
    run_dir = Path(run_dir)
    return atomic_write_bytes(run_dir / CHECKPOINT_FILE, data, keep=run_dir / PREVIOUS_CHECKPOINT_FILE)


def save_checkpoint(run_dir: str | Path, ckpt: Checkpoint) -> Path:
    """Write checkpoint.pt atomically, keeping the one before as checkpoint.prev.pt."""
    return write_checkpoint_bytes(run_dir, checkpoint_bytes(ckpt))


def load_checkpoint(run_dir: str | Path, settings: RunSettings | None = None) -> Checkpoint:
    """The newest usable checkpoint: checkpoint.pt, or checkpoint.prev.pt with a one-line warning if the newest
    is missing, damaged or does not fit ``settings``; one clear error if neither can be used."""
    run_dir = Path(run_dir)
    newest, previous = run_dir / CHECKPOINT_FILE, run_dir / PREVIOUS_CHECKPOINT_FILE
    if not newest.is_file() and not previous.is_file():
        raise QMAEError(
            f"{newest} is missing: the run has not written a checkpoint yet; start it again without "
            f"--resume (into a new --name)"
        )
    try:
        return read_checkpoint(newest, settings)
    except QMAEError as exc:
        if not previous.is_file():
            raise
        first = exc
    try:
        ckpt = read_checkpoint(previous, settings)
    except QMAEError as exc:
        raise QMAEError(
            f"checkpoints {newest.name} ({_reason(first)}) and {previous.name} ({_reason(exc)}) in {run_dir} are "
            f"both unusable; delete the run folder and train again"
        ) from exc
    warnings.warn(
        f"{newest} is unusable ({_reason(first)}); using the previous checkpoint, {previous.name} (step {ckpt.step})",
        QMAEWarning,
        stacklevel=2,
    )
    return ckpt


def _reason(exc: BaseException) -> str:
    """What went wrong reading a checkpoint, in a few words (torch's unpickling errors run to a paragraph)."""
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    text = one_line(cause).split(". ")[0]
    return text if len(text) <= 100 else text[:97] + "..."


def read_checkpoint(path: str | Path, settings: RunSettings | None = None) -> Checkpoint:
    """Read one checkpoint file; a missing, damaged or mismatched file gives one clear error."""
    path = Path(path)
    if not path.is_file():
        raise QMAEError(f"checkpoint {path} is missing; delete the run folder and train again")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any unpickling failure means a damaged file
        raise QMAEError(
            f"checkpoint {path} is corrupt or unreadable ({one_line(exc)}); delete the run folder and train again"
        ) from exc
    try:
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise ValueError(f"not a format-{FORMAT} checkpoint")
        theta = raw["theta"]
        token = raw["token"]
        step = int(raw["step"])
        if not isinstance(theta, torch.Tensor) or theta.dim() != 1:
            raise ValueError("theta is not a vector")
        if token is not None and (not isinstance(token, torch.Tensor) or token.dim() != 1):
            raise ValueError("token is not a vector")
        if settings is not None:
            cfg = settings.config
            if theta.numel() != cfg.n_theta:
                raise ValueError(f"theta has {theta.numel()} values, the config needs {cfg.n_theta}")
            if (token is None) != (settings.model == "qae"):
                raise ValueError(f"the token does not match model {settings.model!r}")
            if token is not None and token.numel() != cfg.n_token:
                raise ValueError(f"the token has {token.numel()} values, the config needs {cfg.n_token}")
            if not 0 <= step <= settings.total_steps:
                raise ValueError(f"step {step} is outside 0..{settings.total_steps}")
    except (KeyError, TypeError, ValueError) as exc:
        raise QMAEError(
            f"checkpoint {path} is corrupt ({one_line(exc)}); delete the run folder and train again"
        ) from exc
    token = None if token is None else token.to(torch.float64)
    return Checkpoint(
        step=step,
        theta=theta.to(torch.float64),
        token=token,
        optimizer=raw.get("optimizer"),
        finished=bool(raw.get("finished", False)),
        extra=dict(raw.get("extra") or {}),
        path=path,
    )


class RunWriter:
    """Writes a running training's metrics lines and checkpoints on a background thread, so that steps do not
    wait for the disk (fsync and two renames per checkpoint; an Aer run checkpoints every step).

    ``submit`` snapshots the records and the checkpoint (as bytes) at once, waits for the previous write and
    starts the next: metrics appended and fsynced first, then the checkpoint, as :func:`save_checkpoint` writes
    it. At most one write is in flight, and the training loop calls :meth:`wait` before it counts the next step
    as done, so a kill still loses at most one checkpoint interval.
    """

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def submit(self, records: list[dict[str, Any]], ckpt: Checkpoint | None = None) -> None:
        lines = metrics_text(records)
        data = None if ckpt is None else checkpoint_bytes(ckpt)
        self.wait()
        if not lines and data is None:
            return
        self._thread = threading.Thread(target=self._write, args=(lines, data), name="qmae-run-writer", daemon=True)
        self._thread.start()

    def _write(self, lines: str, data: bytes | None) -> None:
        try:
            if lines:
                append_metrics_text(self.run_dir, lines, sync=True)
            if data is not None:
                write_checkpoint_bytes(self.run_dir, data)
        except BaseException as exc:  # handed to the training thread by wait()
            self._error = exc

    def wait(self) -> None:
        """Block until the write in flight (if any) is on disk; re-raise its error."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            exc, self._error = self._error, None
            raise exc


# ------------------------------------------------------------------------------------------------- metrics
class MetricsLine(Line):
    """One training step in ``metrics.jsonl``: its loss 1 - <Z> and fidelity <Z> on the batch, and the
    validation fidelity at the end of an epoch that has one."""

    step: int
    epoch: int
    batch: int
    samples: int
    loss: float
    fidelity: float
    seconds: float
    val_fidelity: float | None = None


def metrics_text(records: list[dict[str, Any]]) -> str:
    """The JSON lines of step records, each validated as a :class:`MetricsLine`."""
    return dumps_lines(MetricsLine.model_validate(r) for r in records)


def append_metrics(run_dir: str | Path, records: list[dict[str, Any]], sync: bool = False) -> None:
    """Append step records to metrics.jsonl (a torn last line is dropped on the next read); fsync if ``sync``."""
    if records:
        append_metrics_text(run_dir, metrics_text(records), sync)


def append_metrics_text(run_dir: str | Path, lines: str, sync: bool = False) -> None:
    with open(Path(run_dir) / METRICS_FILE, "a", encoding="utf-8") as fh:
        fh.write(lines)
        fh.flush()
        if sync:
            os.fsync(fh.fileno())


def sync_metrics(run_dir: str | Path) -> None:
    """fsync metrics.jsonl (before a checkpoint, so a power loss cannot keep a checkpoint but lose its steps)."""
    path = Path(run_dir) / METRICS_FILE
    if path.is_file():
        with open(path, "rb+") as fh:
            os.fsync(fh.fileno())


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """All complete step records, in order; a torn line (from a kill) is skipped, a foreign one is one line."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return []
    return [line.to_json() for line in parse_lines(MetricsLine, path.read_text(encoding="utf-8"), str(path))]


def truncate_metrics(run_dir: str | Path, step: int) -> list[dict[str, Any]]:
    """Keep the records of steps 1..``step`` (one each) and rewrite the file atomically; returns them."""
    kept: dict[int, dict[str, Any]] = {}
    for rec in read_metrics(run_dir):
        if 1 <= int(rec["step"]) <= step:
            kept[int(rec["step"])] = rec
    ordered = [kept[s] for s in sorted(kept)]
    atomic_write_text(Path(run_dir) / METRICS_FILE, metrics_text(ordered))
    return ordered


# -------------------------------------------------------------------------------------------- trained model
def load_trained(run_dir: str | Path) -> TrainedModel:
    """The model a run folder holds (its latest checkpoint), validated against its config."""
    run_dir = Path(run_dir)
    record = read_config(run_dir)
    settings = record.settings
    ckpt = load_checkpoint(run_dir, settings)
    return TrainedModel(
        run_dir=run_dir,
        settings=settings,
        theta=ckpt.theta,
        token=ckpt.token,
        step=ckpt.step,
        finished=ckpt.finished,
        data_dir=record.data_dir,
    )
