"""Evaluation of trained runs: exact vs Qiskit, exact vs sampled Aer, scoring, the CLI, and `reproduce`.

Runs are tiny (one Adam step on 8x8 images) so that the circuits stay small; what is tested is the evaluation.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from qiskit.quantum_info import Statevector

from qmae_qiskit.cli import main
from qmae_qiskit.evaluate import classifier as clf
from qmae_qiskit.evaluate.evaluation import EvalOptions, evaluate, load_eval_data
from qmae_qiskit.evaluate.prepare import outputs, prepare
from qmae_qiskit.evaluate.scoring import format_table, score
from qmae_qiskit.export import bind_training
from qmae_qiskit.hardware.executors import make_executor
from qmae_qiskit.hardware.spec import ExecutionSpec
from qmae_qiskit.model.circuits import fidelity_observable, training_circuit
from qmae_qiskit.model.config import QMAEConfig
from qmae_qiskit.model.masking import eval_masks, mask_from_indices
from qmae_qiskit.train.runs import RunSettings, load_trained
from qmae_qiskit.train.training import TrainOptions, train

CFG8 = QMAEConfig(image_size=8)  # 6 data qubits, 4x4 patches: a 14-qubit SWAP-test circuit


@pytest.fixture(scope="module")
def runs(mnist_dir, tmp_path_factory):
    """A QMAE and a QAE run at 25 % mask on 8x8 images, one step each, and an untrained classifier beside them."""
    root = tmp_path_factory.mktemp("runs")
    out = {}
    for kind in ("qmae", "qae"):
        s = RunSettings(
            model=kind,
            config=CFG8,
            mask_ratio=0.25,
            epochs=1,
            batch_size=32,
            train_samples=32,
            val_samples=0,
            lr=0.05,
            seed=3,
        )
        train(s, root / kind, None, TrainOptions(progress=False, plot=False), data_dir=mnist_dir)
        out[kind] = root / kind
    torch.manual_seed(0)  # any fixed weights: the tests compare the classifier with itself
    info = {  # untrained: only the fields a classifier.json holds
        "architecture": "resnet18, untrained",
        **{"epochs": 0, "batch_size": 1, "lr": 0.0, "seed": 0, "augment_shift": 0, "n_train": 0, "image_size": 16},
        **{"train_loss": [], "train_seconds": 0.0, "input_scaling": "metrics.to_pixels", "test_accuracy": None},
    }
    clf.save(root / "classifier", clf.TrainResult(clf.resnet18_small().eval(), info))
    return out


@pytest.fixture(scope="module")
def data8(mnist_dir):
    return load_eval_data(mnist_dir, "test", 8, 40)


def _pair(tm, data, n: int):
    """The first n images as (masked input with the run's evaluation masks, clean), flattened."""
    patch_idx = eval_masks(tm.cfg, tm.mask_ratio, data.indices[:n], 0)
    xm = tm.module().masked_inputs(data.images[:n], patch_idx).detach()
    return xm, data.images[:n].reshape(n, -1)


def _outputs(tm, data, n: int, backend: str = "exact", shots: int | None = None, seed: int = 11):
    """(probabilities, fidelities) of the first n images through the execution layer."""
    executor = make_executor(backend)
    prep = prepare(
        tm, data.image_set().subset(slice(0, n)), ExecutionSpec(backend=backend, shots=shots, seed=seed), executor
    )
    return outputs(prep, executor.run(prep.work).result())


def test_exact_fidelity_matches_the_qiskit_circuit(runs, data8):
    tm = load_trained(runs["qmae"])
    xm, xc = _pair(tm, data8, 2)
    _, fids = _outputs(tm, data8, 2)
    qc = training_circuit(tm.cfg)
    obs = fidelity_observable(qc.num_qubits, qc.metadata["ancilla"])
    for i in range(2):
        sv = Statevector(bind_training(qc, tm.theta, xm[i], xc[i]))
        assert float(fids[i]) == pytest.approx(float(sv.expectation_value(obs).real), abs=1e-9)


def test_sampled_aer_agrees_with_exact_as_shots_grow(runs, data8):
    tm = load_trained(runs["qmae"])
    p_exact, f_exact = _outputs(tm, data8, 3)
    tv, ferr = [], []
    for shots in (64, 20000):
        p, f = _outputs(tm, data8, 3, "aer_simulator", shots)
        assert torch.allclose(p.sum(1), torch.ones(3, dtype=torch.float64))
        tv.append(float(0.5 * (p - p_exact).abs().sum(1).max()))
        ferr.append(float((f - f_exact).abs().max()))
    assert tv[1] < tv[0] / 3 and tv[1] < 0.06, tv  # 64 outcomes: TV ~ 1/sqrt(shots) scale
    assert ferr[1] < 0.03, ferr  # <Z> standard error at 20000 shots is < 0.007
    # and the images: the sampled reconstruction converges to the exact one
    s_exact = score(p_exact, f_exact, data8.images[:3], data8.labels[:3], None)
    s_aer = score(p, f, data8.images[:3], data8.labels[:3], None)
    assert np.allclose(s_aer["cs"].numpy(), s_exact["cs"].numpy(), atol=0.02)


def test_a_perfect_reconstruction_scores_like_the_clean_image(runs, data8):
    model, _ = clf.load(runs["qmae"].parent / "classifier")
    clean = data8.images
    flat = clean.reshape(len(clean), -1)
    probs = flat**2 / (flat**2).sum(1, keepdim=True)
    s = score(probs, torch.ones(len(clean)), clean, data8.labels, model)
    assert torch.allclose(s["cs"], torch.ones(len(clean), dtype=torch.float64))
    assert torch.allclose(s["ssim"], torch.ones(len(clean), dtype=torch.float64))
    same = (clf.predict(model, clean) == data8.labels).double()  # the classifier on its own training scale
    assert torch.equal(s["accuracy"], same)
    with pytest.raises(ValueError, match="probabilities of shape"):
        score(probs[:, :10], None, clean, data8.labels, None)


def test_masks_are_keyed_by_image_and_shared_by_qmae_and_qae(runs, data8):
    idx = data8.indices[:10]
    m = eval_masks(CFG8, 0.25, idx, 0)
    assert torch.equal(eval_masks(CFG8, 0.25, idx.flip(0), 0), m.flip(0))  # order of the split is irrelevant
    assert not torch.equal(eval_masks(CFG8, 0.25, idx, 1), m)
    qmae, qae = load_trained(runs["qmae"]), load_trained(runs["qae"])
    clean = data8.images[:10].reshape(10, -1).to(torch.float64)
    masked = mask_from_indices(CFG8, m).reshape(10, -1)
    zq = qae.module().masked_inputs(data8.images[:10], m).detach()
    tq = qmae.module().masked_inputs(data8.images[:10], m).detach()
    assert bool((zq[masked] == 0).all()) and torch.equal(zq[~masked], clean[~masked])
    assert torch.equal(tq[~masked], clean[~masked])
    token_at = qmae.token.reshape(4, 4).repeat(2, 2).reshape(-1).expand(10, -1)  # 4x4 token on the 2x2 grid
    assert torch.equal(tq[masked], token_at[masked])


def test_evaluate_writes_eval_json_with_baselines(runs, data8, mnist_dir):
    res = evaluate(runs["qae"], options=EvalOptions(limit=40, data_dir=str(mnist_dir))).to_json()
    on_disk = json.loads((runs["qae"] / "eval.json").read_text())
    assert on_disk["metrics"] == res["metrics"] and res["n_images"] == 40 and res["model"] == "qae"
    assert set(res["metrics"]) == {"fidelity", "cs", "ssim", "accuracy"}
    assert set(res["baselines"]) == {"masked", "mean_patch", "position_mean"}
    # QAE feeds the circuit the masked input itself: the baseline is its input, and the same mask was used
    tm = load_trained(runs["qae"])
    xm = tm.module().masked_inputs(data8.images, eval_masks(tm.cfg, 0.25, data8.indices, 0)).detach()
    cos2 = (xm * data8.images.reshape(40, -1)).sum(1) ** 2 / (xm**2).sum(1) / (data8.images**2).sum((1, 2))
    assert res["baselines"]["masked"]["fidelity"]["mean"] == pytest.approx(float(cos2.mean()))
    assert "QAE (exact)" in format_table(res) and "per-position mean" in format_table(res)


def test_cli_evaluate(runs, mnist_dir, tmp_path):
    r = CliRunner().invoke(
        main,
        [
            "evaluate",
            str(runs["qmae"]),
            "--images",
            "12",
            "--data-dir",
            str(mnist_dir),
            "--no-baselines",
            "--json",
            "--out",
            str(tmp_path / "e"),
        ],
    )
    assert r.exit_code == 0, r.output
    res = json.loads(r.output)
    assert res["n_images"] == 12 and res["baselines"] is None
    assert json.loads((tmp_path / "e" / "eval.json").read_text())["metrics"] == res["metrics"]
    r = CliRunner().invoke(
        main,
        [
            "evaluate",
            str(runs["qmae"]),
            "--images",
            "12",
            "--data-dir",
            str(mnist_dir),
            "--out",
            str(tmp_path / "t"),
        ],
    )
    assert r.exit_code == 0 and "QMAE (exact)" in r.output and "accuracy" in r.output
    old = [str(runs["qmae"]), "--images", "12", "--data-dir", str(mnist_dir), "--no-baselines", "--no-classifier"]
    r = CliRunner().invoke(main, ["evaluate", *old, "--out", str(tmp_path / "old.json")])  # the old file form
    assert r.exit_code == 0 and "--out FILE is deprecated" in r.stderr and (tmp_path / "old.json").is_file()
    r = CliRunner().invoke(main, ["evaluate", str(tmp_path / "nope")])
    assert r.exit_code == 2 and "does not exist" in r.output
    r = CliRunner().invoke(
        main,
        [
            "evaluate",
            str(runs["qmae"]),
            "--classifier",
            str(tmp_path / "none"),
            "--images",
            "5",
            "--data-dir",
            str(mnist_dir),
            "--out",
            str(tmp_path / "x"),
        ],
    )
    assert r.exit_code == 2 and "classifier train" in r.output and not (tmp_path / "x").exists()
    r = CliRunner().invoke(main, ["evaluate", str(runs["qmae"]), "--backend", "ibm_torino"])
    assert r.exit_code == 2


def test_reproduce_end_to_end_and_re_evaluation(mnist_dir, tmp_path):
    from qmae_qiskit.experiments.reproduce import Execution, reproduce

    tiny = {"epochs": 1, "train_samples": 16, "val_samples": 0, "batch_size": 16}
    kw = {
        "test_limit": 12,
        "train": tiny,
        "classifier_settings": {"epochs": 1, "limit": 32, "batch_size": 16},
        "execution": Execution(workers=1, progress=False, log=lambda m: None),  # in this process, in turn
    }
    pooled = Execution(workers=2, progress=False, log=lambda m: None)  # the tasks on two one-thread processes
    rec = reproduce(tmp_path / "res", mnist_dir, **{**kw, "execution": pooled})
    assert rec["workers"] == 2 and {"classifier", "train qae-m25", "evaluate qmae-m50"} <= rec["seconds"].keys()
    for f in (
        "table1.md",
        "table1.json",
        "fig6.png",
        "fig7.png",
        "fig8.png",
        "params.json",
        "classifier/.gitignore",
        "qmae-m12.5/eval.json",
    ):
        assert (tmp_path / "res" / f).is_file(), f
    assert rec["n_test_images"] == 12 and set(rec["runs"].values()) == {"trained"}
    assert "| **QMAE (ours)**" in (tmp_path / "res" / "table1.md").read_text()
    again = reproduce(tmp_path / "res", mnist_dir, **kw)  # finished runs are reused and re-scored identically,
    assert set(again["runs"].values()) == {"reused"} and again["ours"] == rec["ours"]  # here in this process
    assert again["baselines"] == rec["baselines"] and again["workers"] == 1
    seq = reproduce(tmp_path / "seq", mnist_dir, **kw)  # trained in this process: the same numbers as the pool's
    assert seq["ours"] == rec["ours"] and seq["classifier"] == rec["classifier"]
    res = evaluate(
        tmp_path / "res" / "qae-m25", options=EvalOptions(limit=12, data_dir=str(mnist_dir)), out=tmp_path / "e.json"
    )
    assert res.metrics == rec["ours"]["qae-m25"]
    with pytest.raises(ValueError, match="other settings"):
        reproduce(tmp_path / "res", mnist_dir, **{**kw, "train": {**tiny, "lr": 0.5}})
