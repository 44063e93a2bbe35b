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


@pytest.fixture(autouse=True)
def _seed_torch():
    torch.manual_seed(1234)


class Killed(Exception):
    """Stands for a hard kill: nothing in the training loop catches it, so no extra checkpoint is written."""


@pytest.fixture
def train_killed_at():
    """``run(settings, run_dir, data, step)``: train, interrupted as by a kill right after optimizer step ``step``."""
    from qmae_qiskit.train.training import train

    def run(settings, run_dir, data, step: int) -> None:
        def kill(done: int, record) -> None:
            if done == step:
                raise Killed

        with pytest.raises(Killed):
            train(settings, run_dir, data, progress=False, plot=False, on_step=kill)

    return run
