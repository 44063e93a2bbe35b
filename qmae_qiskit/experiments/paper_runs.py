"""The paper's four runs and their classifier: what each is, and trained (or reused when finished with the same
settings) in its folder. Shared by ``reproduce`` (in this process or its pool), ``fig8`` and a sweep's tasks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from qmae_qiskit.errors import QMAEError
from qmae_qiskit.evaluate import classifier as clf_mod
from qmae_qiskit.io import atomic_write_text
from qmae_qiskit.model.config import QMAEConfig
from qmae_qiskit.train.runs import (
    CHECKPOINT_FILE,
    RunSettings,
    load_checkpoint,
    read_settings,
    settings_differences,
)
from qmae_qiskit.train.training import TrainOptions
from qmae_qiskit.train.training import train as train_run

PAPER_GAP = 0.1286  # QMAE - QAE accuracy, paper abstract and Table 1 (65.06 % - 52.20 %)

# Training settings used for every run (chosen by the tuning recorded in table1.md).
TRAIN_DEFAULTS = {
    "batch_size": 256,
    "epochs": 40,
    "train_samples": 4500,
    "val_samples": 500,
    "lr": 0.01,
    "theta_init": "uniform",
    "token_init": "mean",
    "seed": 0,
    "checkpoint_every": 50,
}
CLASSIFIER_DEFAULTS = asdict(clf_mod.ClassifierSettings())  # the recipe train_classifier has by default


@dataclass(frozen=True)
class RunSpec:
    name: str
    model: str
    mask_ratio: float
    config: QMAEConfig


def run_specs() -> list[RunSpec]:
    """QMAE and QAE at 25 %, QMAE at 12.5 % and 50 % (paper Table 1 and Fig. 7)."""
    quad = QMAEConfig()  # 16x16, 8 data qubits, 7 latent, 8x8 patches
    half_quad = QMAEConfig(patch_height=4, patch_width=8)
    return [
        RunSpec("qmae-m25", "qmae", 0.25, quad),
        RunSpec("qae-m25", "qae", 0.25, quad),
        RunSpec("qmae-m12.5", "qmae", 0.125, half_quad),
        RunSpec("qmae-m50", "qmae", 0.5, quad),
    ]


def _settings(spec: RunSpec, train: dict):

    return RunSettings(model=spec.model, backend="exact", config=spec.config, mask_ratio=spec.mask_ratio, **train)


def ensure_trained(
    spec: RunSpec, run_dir: Path, train: dict, data_dir: str | Path | None, progress: bool, log: Callable[[str], None]
) -> str:
    """Train the run unless it is already finished with the same settings; returns what was done."""

    settings = _settings(spec, train)
    resume = False
    if run_dir.exists() and any(run_dir.iterdir()):
        stored = read_settings(run_dir)
        diffs = settings_differences(stored, settings)
        if diffs:
            raise QMAEError(
                f"{run_dir} was trained with other settings ({'; '.join(diffs)}); remove it or pass another --out"
            )
        if (run_dir / CHECKPOINT_FILE).is_file() and load_checkpoint(run_dir, settings).finished:
            log(f"{spec.name}: already trained ({run_dir}), reusing it")
            return "reused"
        resume = True
    log(
        f"{spec.name}: training {spec.model.upper()} at {spec.mask_ratio:.1%} mask "
        f"({settings.total_steps} steps){' (resuming)' if resume else ''}"
    )
    train_run(settings, run_dir, None, TrainOptions(resume=resume, progress=progress), data_dir=data_dir)
    return "resumed" if resume else "trained"


def ensure_classifier(
    folder: Path,
    data_dir: str | Path | None,
    image_size: int,
    progress: bool,
    log: Callable[[str], None],
    settings: dict,
    test_limit: int | None = None,
    device: str = "cpu",
) -> dict:
    """The cached classifier's info, training it first if the folder has none."""
    atomic_write_text(
        folder / ".gitignore", "# weights are a cache: `qmae-qiskit reproduce` retrains them\nclassifier.pt\n"
    )
    if clf_mod.exists(folder):
        info = clf_mod.load(folder)[1]
        diffs = clf_mod.setting_diffs(info, settings)
        if diffs:
            raise QMAEError(
                f"the classifier cached in {folder} was trained with other settings "
                f"({'; '.join(diffs)}); remove {folder / clf_mod.WEIGHTS} to retrain it"
            )
        log(f"classifier: cached in {folder}, reusing it")
        return info
    log(f"classifier: training ResNet18 on clean MNIST ({settings['epochs']} epochs)")
    return clf_mod.train_and_cache(
        data_dir, folder, image_size=image_size, progress=progress, test_limit=test_limit, device=device, **settings
    )
