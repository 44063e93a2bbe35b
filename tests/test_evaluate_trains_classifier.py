"""`evaluate` right after `train` scores accuracy: it trains the classifier it needs once, caches it, says so."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from conftest import write_small_mnist

from qmae_qiskit.cli import main


@pytest.fixture
def one_thread():
    """One torch thread: in-process, OMP_WAIT_POLICY cannot be set before torch loads, and spinning threads on a
    shared machine cost more than they give at this size."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_evaluate_trains_the_missing_classifier_once(tmp_path, mnist_dir, monkeypatch, one_thread):
    data = write_small_mnist(mnist_dir, tmp_path / "data", 300, 40)
    monkeypatch.setenv("QMAE_DATA_DIR", str(data))
    monkeypatch.chdir(tmp_path)
    run = CliRunner().invoke(
        main,
        [
            "train",
            "--image-size",
            "4",
            "--epochs",
            "1",
            "--train-images",
            "250",
            "--val-images",
            "50",
            "--name",
            "r",
            "--no-progress",
        ],
    )
    assert run.exit_code == 0, run.output
    first = CliRunner().invoke(main, ["evaluate", "runs/r", "--json"])
    assert first.exit_code == 0, first.output
    cached = tmp_path / "runs" / "classifier-L4"
    assert "training one once into runs/classifier-L4" in first.stderr and "classifier" in first.stderr
    info = json.loads((cached / "classifier.json").read_text())
    assert info["image_size"] == 4 and info["n_train"] == 300
    result = json.loads(first.stdout)
    assert result["classifier"]["path"] == "runs/classifier-L4" and result["metrics"]["accuracy"]["mean"] >= 0
    # the same classifier `classifier train` makes with its defaults, bit for bit
    same = CliRunner().invoke(main, ["classifier", "train", "--image-size", "4", "--out", "own", "--json"])
    assert same.exit_code == 0, same.output
    ours, theirs = (torch.load(d / "classifier.pt", weights_only=True) for d in (cached, tmp_path / "own"))
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    # once: the second evaluation reuses it and says nothing about training
    stamp = (cached / "classifier.pt").stat().st_mtime_ns
    second = CliRunner().invoke(main, ["evaluate", "runs/r", "--json"])
    assert second.exit_code == 0 and "training one" not in second.stderr
    assert (cached / "classifier.pt").stat().st_mtime_ns == stamp
    assert json.loads(second.stdout)["metrics"] == result["metrics"]
