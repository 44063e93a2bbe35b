"""Shared test fixtures: the MNIST folder beside the checkout (../shared/data) or $QMAE_DATA_DIR."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    env = os.environ.get("QMAE_DATA_DIR")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    d = data_dir()
    if not (d / "MNIST" / "raw").is_dir():
        pytest.fail(f"MNIST not found at {d}; set QMAE_DATA_DIR to a folder with torchvision's MNIST layout")
    return d


@pytest.fixture(scope="module")
def run4(tmp_path_factory) -> Path:
    """A finished 4x4 run with small random parameters (no training): the smallest model a command can take."""
    from qmae_qiskit.model.config import QMAEConfig
    from qmae_qiskit.train.runs import Checkpoint, RunSettings, create_run_dir, save_checkpoint

    cfg = QMAEConfig(image_size=4)
    settings = RunSettings(config=cfg, train_samples=4, batch_size=4)
    d = create_run_dir(tmp_path_factory.mktemp("runs") / "qmae4", settings, data_dir=REPO.parent / "shared" / "data")
    g = torch.Generator().manual_seed(5)
    theta = 0.3 * torch.rand(cfg.n_theta, generator=g, dtype=torch.float64)
    token = torch.rand(cfg.n_token, generator=g, dtype=torch.float64)
    save_checkpoint(d, Checkpoint(step=1, theta=theta, token=token, finished=True))
    return d


@pytest.fixture(autouse=True)
def _seed_torch():
    torch.manual_seed(1234)


class Killed(Exception):
    """Stands for a hard kill: nothing in the training loop catches it, so no extra checkpoint is written."""


@pytest.fixture
def train_killed_at():
    """``run(settings, run_dir, data, step)``: train, interrupted as by a kill right after optimizer step ``step``."""
    from qmae_qiskit.train.training import TrainOptions, train

    def run(settings, run_dir, data, step: int) -> None:
        def kill(done: int, record) -> None:
            if done == step:
                raise Killed

        with pytest.raises(Killed):
            train(settings, run_dir, data, TrainOptions(progress=False, plot=False), on_step=kill)

    return run


def write_small_mnist(src: Path, root: Path, n_train: int, n_test: int) -> Path:
    """The first ``n_train`` / ``n_test`` images of the MNIST in ``src``, as valid IDX files in ``root/MNIST/raw``."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        for kind, ndim in (("images", 3), ("labels", 1)):
            name = f"{prefix}-{kind}-idx{ndim}-ubyte"
            blob = (src / "MNIST" / "raw" / name).read_bytes()
            head = 4 + 4 * ndim
            item = 784 if ndim == 3 else 1
            (raw / name).write_bytes(blob[:4] + n.to_bytes(4, "big") + blob[8:head] + blob[head : head + n * item])
    return root
