"""The ResNet18 judge: its adaptation, that it learns, its cache, and the CLI (a few hundred images only)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from qmae_qiskit.cli import main
from qmae_qiskit.data import load_mnist
from qmae_qiskit.errors import QMAEError
from qmae_qiskit.evaluate import classifier as clf


def test_architecture_is_resnet18_adapted_to_16x16():
    model = clf.resnet18_small()
    assert isinstance(model.maxpool, nn.Identity)
    assert model.conv1.in_channels == 1 and model.fc.out_features == 10
    assert len(model.layer1) == len(model.layer4) == 2  # ResNet18: two basic blocks per stage
    model.eval()
    with torch.no_grad():
        assert model(torch.rand(3, 1, 16, 16)).shape == (3, 10)


def test_prepare_uses_the_metrics_pixel_scale():
    x = torch.rand(4, 16, 16, dtype=torch.float64)
    a, b = clf.prepare(x), clf.prepare(3.0 * x)
    assert a.shape == (4, 1, 16, 16) and a.dtype == torch.float32
    assert torch.allclose(a, b) and torch.allclose(a.amax(dim=(1, 2, 3)), torch.ones(4))


@pytest.fixture(scope="module")
def tiny(mnist_dir):
    """Zeros and ones from the training split, and a classifier trained on them for a few steps."""
    data = load_mnist(mnist_dir, train=True, image_size=16)  # the local subset may be sorted by label
    rows = torch.cat([(data.labels == d).nonzero().flatten()[:32] for d in (0, 1)])
    images, labels = data.images[rows], data.labels[rows]
    result = clf.train_classifier(
        images, labels, clf.ClassifierSettings(epochs=3, batch_size=16, lr=2e-3, seed=0), progress=False
    )
    return images, labels, result


def test_training_learns_an_easy_split(tiny):
    images, labels, result = tiny
    assert 0.2 < float((labels == 1).double().mean()) < 0.8  # both classes present: chance is well below 0.9
    assert clf.accuracy(result.model, images, labels) >= 0.9
    assert result.info["n_train"] == 64 and len(result.info["train_loss"]) == 3


def test_cache_round_trip_and_errors(tiny, tmp_path):
    images, _, result = tiny
    clf.save(tmp_path / "c", result)
    assert clf.exists(tmp_path / "c")
    model, info = clf.load(tmp_path / "c")
    assert torch.equal(clf.predict(model, images), clf.predict(result.model, images))
    assert info["epochs"] == 3
    with pytest.raises(QMAEError, match="classifier train"):
        clf.load(tmp_path / "missing")
    (tmp_path / "c" / clf.WEIGHTS).write_bytes(b"not a checkpoint")
    with pytest.raises(QMAEError, match="cannot read"):
        clf.load(tmp_path / "c")
    with pytest.raises(QMAEError, match="labels"):
        clf.train_classifier(images, torch.zeros(3), clf.ClassifierSettings(epochs=1))


def test_cli_train_writes_cache_and_reports(mnist_dir, tmp_path):
    out = tmp_path / "clf"
    res = CliRunner().invoke(
        main,
        [
            "classifier",
            "train",
            "--data-dir",
            str(mnist_dir),
            "--out",
            str(out),
            "--train-images",
            "64",
            "--images",
            "50",
            "--epochs",
            "1",
            "--batch-size",
            "32",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert info["n_train"] == 64 and info["n_test"] == 50 and 0.0 <= info["test_accuracy"] <= 1.0
    assert (out / "classifier.pt").is_file() and json.loads((out / "classifier.json").read_text()) == info
    bad = CliRunner().invoke(
        main,
        [
            "classifier",
            "train",
            "--data-dir",
            str(tmp_path / "nowhere"),
            "--out",
            str(tmp_path / "x"),
            "--train-images",
            "64",
        ],
    )
    assert bad.exit_code == 2 and "no MNIST data" in bad.output
    assert not (tmp_path / "x").exists()


def test_random_shift_moves_each_image_rigidly():
    g = torch.Generator().manual_seed(5)
    x = torch.zeros(50, 1, 9, 9)
    x[:, 0, 4, 4] = 1.0  # one bright pixel in the centre: a shift of at most 2 keeps it inside
    x[:, 0, 3, 4] = 0.5
    y = clf.random_shift(x, g, max_shift=2)
    assert y.shape == x.shape and torch.allclose(y.sum(dim=(1, 2, 3)), x.sum(dim=(1, 2, 3)))
    for img in y[:, 0]:
        r, c = (img == 1.0).nonzero()[0].tolist()
        assert abs(r - 4) <= 2 and abs(c - 4) <= 2 and img[r - 1, c] == 0.5  # the pair moved together
    assert len({tuple((img == 1.0).nonzero()[0].tolist()) for img in y[:, 0]}) > 5  # shifts differ


# ------------------------------------------------------------------------------------------- determinism
# Each entry point trains the same tiny classifier in a fresh process whose torch thread count is set first:
# a sweep worker (one thread), then the CLI and ``reproduce``'s ensure_classifier in one two-thread process.
_TINY = {"epochs": 2, "batch_size": 16, "lr": 2e-3, "seed": 3, "augment_shift": 1, "limit": 48}
_ENTRY = """
import json, shutil, sys, torch
from pathlib import Path
threads, hows, data, out, unpinned = int(sys.argv[1]), sys.argv[2], sys.argv[3], Path(sys.argv[4]), sys.argv[5] == "1"
tiny = json.loads(sys.argv[6])
torch.set_num_threads(threads)
from qmae_qiskit.evaluate import classifier as clf
if unpinned:  # the control: train on the caller's threads, as before the recipe pinned them
    clf.TRAIN_THREADS = threads
for how in hows.split(","):
    if how == "cli":
        from click.testing import CliRunner
        from qmae_qiskit.cli import main
        args = ["classifier", "train", "--data-dir", data, "--out", str(out / how), "--test-limit", "40", "--json"]
        for k, v in tiny.items():
            args += ["--" + k.replace("_", "-"), str(v)]
        res = CliRunner().invoke(main, args)
        assert res.exit_code == 0, res.output
    elif how == "reproduce":
        from qmae_qiskit.experiments.reproduce import ensure_classifier
        ensure_classifier(out / how, data, 16, False, lambda _: None, tiny, 40)
    else:
        from qmae_qiskit.experiments.cells import ClassifierSpec
        from qmae_qiskit.experiments.tasks import ensure_classifier as task
        spec = ClassifierSpec(image_size=16, **tiny)
        res = task(spec, out, data, 40, threads=threads)
        assert res["ok"], res
        shutil.copytree(spec.folder(out), out / how)
    assert torch.get_num_threads() == threads  # the pin is undone afterwards
"""


def _train_in_process(tmp_path, mnist_dir, hows: str, threads: int, unpinned: bool = False) -> dict[str, tuple]:
    """{entry point: (state_dict, classifier.json)} of the tiny classifier trained in one fresh process."""
    out = tmp_path / f"t{threads}-{'unpinned' if unpinned else 'pinned'}"
    cmd = [sys.executable, "-c", _ENTRY, str(threads), hows, str(mnist_dir), str(out), str(int(unpinned))]
    repo = str(Path(__file__).resolve().parents[1])  # this checkout, not an installed copy
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": repo}
    done = subprocess.run([*cmd, json.dumps(_TINY)], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    return {
        how: (torch.load(out / how / clf.WEIGHTS, weights_only=True), json.loads((out / how / clf.INFO).read_text()))
        for how in hows.split(",")
    }


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_weights_and_accuracy_do_not_depend_on_threads_or_entry_point(mnist_dir, tmp_path):
    worker = _train_in_process(tmp_path, mnist_dir, "worker", 1)["worker"]
    two = _train_in_process(tmp_path, mnist_dir, "cli,reproduce", 2)
    for how, (weights, info) in two.items():
        assert _same(worker[0], weights), how  # bit for bit, BatchNorm statistics included
        assert info["test_accuracy"] == worker[1]["test_accuracy"] and info["train_loss"] == worker[1]["train_loss"]
    assert worker[1]["recipe"] == clf.RECIPE
    # the control: without the pin, two threads sum the gradients in another order and the weights differ
    unpinned = _train_in_process(tmp_path, mnist_dir, "cli", 2, unpinned=True)["cli"]
    assert not _same(unpinned[0], worker[0])


def test_predictions_do_not_depend_on_threads(tiny):
    images, _, result = tiny
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        logits1 = _logits(result.model, images)
        torch.set_num_threads(2)
        logits2 = _logits(result.model, images)
    finally:
        torch.set_num_threads(old)
    assert torch.equal(logits1, logits2)


@torch.inference_mode()
def _logits(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    clf.predict(model, images[:2])  # the same channels-last conversion predict makes
    return model(clf.prepare(images).contiguous(memory_format=torch.channels_last))
