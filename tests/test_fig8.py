"""`figure8`: per-sample (batch size 1) runs, their trends and held-out spreads recomputed independently."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from qmae_qiskit.cli import main
from qmae_qiskit.data import load_mnist
from qmae_qiskit.model.masking import eval_masks
from qmae_qiskit.simulate import exact
from qmae_qiskit.train.runs import load_trained, read_metrics

REPO = Path(__file__).resolve().parents[1]


def test_figure8_per_sample_runs_and_numbers(tmp_path, mnist_dir):
    out = tmp_path / "fig8"
    args = ["figure8", "--out", str(out), "--train-images", "12", "--images", "30", "--no-progress"]
    args += ["--batch-runs", str(REPO / "results"), "--data-dir", str(mnist_dir)]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    rec = json.loads((out / "fig8-per-sample.json").read_text())
    assert (out / "fig8-per-sample.png").stat().st_size > 10_000
    test = load_mnist(mnist_dir, train=False, image_size=16, limit=30)
    for model in ("qmae", "qae"):
        recs = read_metrics(out / f"{model}-m25-batch1")
        assert len(recs) == 12 and {r["samples"] for r in recs} == {1}  # one image per Adam step
        losses = np.array([r["loss"] for r in recs])
        t = rec["per_sample"][model]
        assert t["first_tenth_mean"] == pytest.approx(losses[:1].mean()) and t["max"] == pytest.approx(losses.max())
        # held-out spread of the final model, recomputed with the reference simulator
        for kind, folder in (("per-sample", out / f"{model}-m25-batch1"), ("batch", REPO / "results" / f"{model}-m25")):
            tm = load_trained(folder)
            xm = tm.module().masked_inputs(test.images, eval_masks(tm.cfg, 0.25, test.indices, 0))
            fid = exact.fidelity_reference(tm.theta, xm.detach(), test.images.reshape(30, -1).double(), tm.cfg)
            lost = (1 - fid).numpy()
            got = rec["held_out"][f"{model} {kind}"]
            assert got["mean"] == pytest.approx(lost.mean(), abs=1e-10)
            assert got["percentiles"]["95"] == pytest.approx(np.percentile(lost, 95), abs=1e-10)
    assert rec["batch_runs"]["qae"]["batch_size"] == 256
    assert torch.is_tensor(load_trained(out / "qae-m25-batch1").theta)
