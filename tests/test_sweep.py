"""`qmae-qiskit sweep` on a LocalCluster of 2 workers with 4x4 cells: the summary equals an independent
recomputation from the cells' eval.json, reruns skip finished cells, a failing cell is recorded while the others
finish, bad input is one line with exit 2 and nothing written."""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from scipy import stats as sps

from qmae_qiskit.cli import main
from qmae_qiskit.errors import QMAEError
from qmae_qiskit.experiments import grid as G
from qmae_qiskit.experiments.cells import EvalSpec, build_cells
from qmae_qiskit.experiments.stats import t_stat

pytestmark = pytest.mark.timeout(900)

SMALL = ["--image-size", "4", "--train-images", "64", "--epochs", "2", "--batch-size", "16", "--val-images", "0"]
SMALL += ["--images", "100", "--classifier-train-images", "200", "--classifier-epochs", "1"]
METRICS = ("fidelity", "cs", "ssim", "accuracy")


def _cli(args: list[str], mnist_dir: Path):
    return CliRunner().invoke(main, ["sweep", *args, "--data-dir", str(mnist_dir)])


# ----------------------------------------------------------------------------------------------- pure parts
def test_grid_arguments_and_toml_parse_to_the_same_axes(tmp_path):
    args = G.parse_grid_args(["model=qmae,qae", "mask-ratio=0.125,0.25", "patch=4x8,8x8", "lr=0.01"])
    assert args == {"model": ["qmae", "qae"], "mask_ratio": [0.125, 0.25], "patch": [(4, 8), (8, 8)], "lr": [0.01]}
    f = tmp_path / "g.toml"
    f.write_text('[grid]\nmodel = ["qmae", "qae"]\nmask_ratio = [0.125, 0.25]\npatch = ["4x8", [8, 8]]\nlr = 0.01\n')
    assert G.load_grid_file(f) == args
    assert G.cell_count(args) == 8


@pytest.mark.parametrize(
    "args, words",
    [
        (["colour=red"], "unknown grid name 'colour'"),
        (["model=qmae,xyz"], "unknown value 'xyz' for model"),
        (["seed=0,a"], "grid value 'a' for seed is not valid"),
        (["seed=0,,1"], "empty value"),
        (["seed"], "is not NAME=V1,V2"),
        (["seed=0", "seed=1"], "given twice"),
        (["patch=48"], "HxW"),
    ],
)
def test_bad_grid_arguments_are_one_line(args, words):
    with pytest.raises(QMAEError, match=words):
        G.parse_grid_args(args)


def test_cells_are_named_by_swept_values_and_collisions_are_refused():
    base = {"image_size": 4, "train_samples": 8}
    cells = build_cells(G.parse_grid_args(["mask_ratio=0.25,0.375", "layers=1,2", "seed=0,1"]), base)
    assert [c.name for c in cells][:3] == ["m0.25-l1-s0", "m0.25-l1-s1", "m0.25-l2-s0"]
    c = next(c for c in cells if c.name == "m0.375-l2-s1")
    # 0.375 of a 4x4 image: the coarsest grid that makes it (8 patches of 1x2, 3 masked), like `train`
    assert (c.settings.config.patch_height, c.settings.config.patch_width) == (1, 2)
    assert c.settings.config.layers == 2 and c.settings.seed == 1 and c.classifier.seed == 0
    for bad in (["seed=0,0"], ["mask_ratio=0.25,0.250"], ["lr=0.01,1e-2"]):
        with pytest.raises(QMAEError, match="grid cells collide"):
            build_cells(G.parse_grid_args(bad), base)
    with pytest.raises(QMAEError, match="latent_qubits must be between 1 and 3"):
        build_cells(G.parse_grid_args(["latent_qubits=2,9"]), base)
    with pytest.raises(QMAEError, match="mask ratio 0.3"):
        build_cells(G.parse_grid_args(["mask_ratio=0.3"]), base)


def test_student_t_interval_against_scipy():
    values = [0.61, 0.72, 0.58, 0.66, 0.70]
    s = t_stat(values)
    lo, hi = sps.t.interval(0.95, len(values) - 1, loc=sum(values) / 5, scale=sps.sem(values))
    assert s.n == 5 and s.ci95 == pytest.approx([lo, hi], abs=1e-14)
    assert s.std == pytest.approx(float(torch.tensor(values, dtype=torch.float64).std()), abs=1e-15)
    one = t_stat([0.5])
    assert one.n == 1 and one.ci95 is None and one.std is None and one.mean == 0.5


# ----------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "args, words",
    [
        (["--grid", "colour=red"], "unknown grid name"),
        (["--grid", "model=qmae,xyz"], "unknown value 'xyz' for model"),
        (["--grid", "seed=0,0"], "grid cells collide"),
        (["--grid", "latent_qubits=2,9"], "latent_qubits must be between"),
        (["--grid", "seed=0,1", "--seed", "3"], "swept by the grid and also given as --seed"),
        (["--scheduler", "tcp://127.0.0.1:9", "--connect-timeout", "1"], "no Dask scheduler answers"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, mnist_dir, args, words):
    out = tmp_path / "sweep"
    res = _cli([*args, *SMALL, "--out", str(out)], mnist_dir)
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and words in lines[0], res.output
    assert not out.exists()


# ----------------------------------------------------------------------------------------------- cluster
def test_local_workers_run_this_checkout_with_one_thread():
    import qmae_qiskit
    from qmae_qiskit.experiments.cluster import get_client, worker_package_paths

    here = os.path.dirname(os.path.abspath(qmae_qiskit.__file__))
    with get_client(None, 2) as client:
        paths = worker_package_paths(client)
        assert len(paths) == 2 and set(paths.values()) == {here}
        assert set(client.run(torch.get_num_threads).values()) == {1}
        assert set(client.run(lambda: os.environ.get("PYTHONPATH")).values()) == {os.environ.get("PYTHONPATH")}


def _independent_summary(out: Path) -> tuple[dict, dict]:
    """Group means and t intervals straight from the cells' eval.json (model by folder name, seed by config)."""
    groups: dict[str, dict[str, list[float]]] = {}
    per_seed: dict[str, dict[int, dict[str, float]]] = {}
    for ev_path in sorted(out.glob("*/eval.json")):
        ev = json.loads(ev_path.read_text())
        model = ev["model"]
        seed = json.loads((ev_path.parent / "config.json").read_text())["settings"]["seed"]
        means = {m: ev["metrics"][m]["mean"] for m in METRICS}
        per_seed.setdefault(model, {})[seed] = means
        for m in METRICS:
            groups.setdefault(model, {}).setdefault(m, []).append(means[m])
    diffs = {
        m: [per_seed["qmae"][s][m] - per_seed["qae"][s][m] for s in sorted(per_seed["qmae"]) if s in per_seed["qae"]]
        for m in METRICS
    }
    return groups, diffs


def _check_interval(stat: dict, values: list[float]) -> None:
    n = len(values)
    mean = sum(values) / n
    assert stat["n"] == n and stat["mean"] == pytest.approx(mean, abs=1e-12)
    if n == 1:
        assert stat["ci95"] is None
        return
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = sps.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
    assert stat["std"] == pytest.approx(sd, abs=1e-12)
    assert stat["ci95"] == pytest.approx([mean - half, mean + half], abs=1e-12)


def _check_summary(out: Path) -> dict:
    summary = json.loads((out / "summary.json").read_text())
    groups, diffs = _independent_summary(out)
    by_model = {g["key"]["model"]: g for g in summary["groups"]}
    assert set(by_model) == set(groups)
    for model, values in groups.items():
        for m in METRICS:
            _check_interval(by_model[model]["metrics"][m], values[m])
    (paired,) = summary["paired"]
    for m in METRICS:
        _check_interval(paired["metrics"][m], diffs[m])
    # the baselines: one classifier seed -> one value each, the same in every cell's eval.json
    evs = [json.loads(p.read_text()) for p in out.glob("*/eval.json")]
    for name, b in by_model["qmae"]["baselines"].items():
        assert {e["baselines"][name]["accuracy"]["mean"] for e in evs} == {b["accuracy"]["mean"]}
        assert b["accuracy"]["n"] == 1 and b["accuracy"]["ci95"] is None
    return summary


def test_sweep_runs_resumes_and_records_a_failing_cell(tmp_path, mnist_dir):
    out = tmp_path / "sweep"
    args = ["--grid", "model=qmae,qae", "--grid", "seed=0,1,2", *SMALL, "--workers", "2", "--out", str(out)]
    res = _cli(args, mnist_dir)
    assert res.exit_code == 0, res.output
    names = {f"{m}-s{s}" for m in ("qmae", "qae") for s in (0, 1, 2)}
    assert {p.parent.name for p in out.glob("*/eval.json")} == names
    assert (out / "classifiers" / "L4-c0" / "classifier.json").is_file()
    assert len(list((out / "plots").glob("*.png"))) == 4
    summary = _check_summary(out)
    assert summary["timing"]["cells_run"] == 6 and summary["failed"] == []
    # all the cells use the same test images and masks
    evs = [json.loads(p.read_text()) for p in out.glob("*/eval.json")]
    assert {(e["n_images"], e["mask_seed"], e["limit"]) for e in evs} == {(100, 0, 100)}

    # a rerun finds every cell finished: no cluster, nothing recomputed
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("*/*.json")}
    res = _cli(args, mnist_dir)
    assert res.exit_code == 0 and "all 6 cells" in res.output, res.output
    assert {p: p.stat().st_mtime_ns for p in out.glob("*/*.json")} == stamps

    # a damaged cell (both checkpoints unreadable) fails with one line while an unfinished one is evaluated again
    # and the rest are skipped (one bad checkpoint alone is survived: training falls back to the previous one)
    (out / "qae-s2" / "checkpoint.pt").write_bytes(b"not a checkpoint")
    if (out / "qae-s2" / "checkpoint.prev.pt").is_file():
        (out / "qae-s2" / "checkpoint.prev.pt").write_bytes(b"not a checkpoint either")
    (out / "qae-s2" / "eval.json").unlink()
    (out / "qmae-s2" / "eval.json").unlink()
    res = _cli(args, mnist_dir)
    assert res.exit_code == 1, res.output
    assert "4 of 6 cells already finished" in res.output
    error = (out / "qae-s2" / "error.txt").read_text()
    assert len(error.strip().splitlines()) == 1 and "checkpoint" in error
    assert "corrupt" in error or "unusable" in error
    assert (out / "qmae-s2" / "eval.json").is_file()
    summary = _check_summary(out)
    assert summary["failed"] == [{"cell": "qae-s2", "error": error.strip()}]
    assert summary["timing"]["cells_run"] == 2 and summary["timing"]["cells_skipped"] == 4
    status = {c["name"]: c["status"] for c in summary["cells"]}
    assert status["qae-s2"] == "failed" and sum(s == "finished" for s in status.values()) == 5
    assert summary["paired"][0]["n"] == 2

    # a retrained classifier (its folder removed, another recipe) judges every cell again: no accuracy of the
    # old classifier survives beside the new one
    shutil.rmtree(out / "classifiers")
    res = _cli([*args, "--classifier-recipe", "2"], mnist_dir)
    assert res.exit_code == 1 and "already finished" not in res.output and "[6/6]" in res.output, res.output
    info = json.loads((out / "classifiers" / "L4-c0" / "classifier.json").read_text())
    assert info["recipe"].startswith("v2:")
    for name in names - {"qae-s2"}:
        judged = json.loads((out / name / "eval.json").read_text())["classifier"]
        assert (judged["recipe"], judged["clean_test_accuracy"]) == (info["recipe"], info["test_accuracy"])


def test_a_killed_cell_resumes_from_its_checkpoint(tmp_path, mnist_dir, train_killed_at):
    """What a worker does for a cell whose training was killed: continue, ending where an uninterrupted run ends."""
    from qmae_qiskit.experiments import tasks
    from qmae_qiskit.train.runs import load_trained
    from qmae_qiskit.train.training import TrainOptions, load_training_data, train

    base = {"image_size": 4, "train_samples": 32, "batch_size": 8, "epochs": 2, "checkpoint_every": 2}
    (cell,) = build_cells({"seed": [3]}, base, evaluation=EvalSpec(limit=10))
    data = load_training_data(cell.settings, mnist_dir)
    train_killed_at(cell.settings, cell.folder(tmp_path / "a"), data, 5)  # checkpoint at step 4 of 8
    res = tasks.train_cell(cell, tmp_path / "a", mnist_dir)
    assert res["ok"] and res["action"] == "resumed", res
    train(cell.settings, tmp_path / "b", data, TrainOptions(progress=False, plot=False), data_dir=mnist_dir)
    a, b = load_trained(cell.folder(tmp_path / "a")), load_trained(tmp_path / "b")
    assert a.finished and a.step == 8
    torch.testing.assert_close(a.theta, b.theta, atol=0, rtol=0)
    assert tasks.train_cell(cell, tmp_path / "a", mnist_dir)["action"] == "reused"
    # a finished cell asked for with another checkpoint interval (a resumable change) is reused and re-recorded
    (other,) = build_cells({"seed": [3]}, {**base, "checkpoint_every": 3}, evaluation=EvalSpec(limit=10))
    assert tasks.train_cell(other, tmp_path / "a", mnist_dir)["action"] == "reused"
    from qmae_qiskit.train.runs import read_settings

    assert read_settings(cell.folder(tmp_path / "a")) == other.settings


def test_sweep_on_an_existing_scheduler(tmp_path, mnist_dir):
    """--scheduler ADDRESS: the cells run on a cluster the sweep did not start (and does not stop)."""
    from distributed import Client, LocalCluster

    out = tmp_path / "sweep"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        addr = cluster.scheduler_address
        res = _cli(["--grid", "seed=0,1", *SMALL, "--scheduler", addr, "--workers", "2", "--out", str(out)], mnist_dir)
        assert res.exit_code == 2 and "--workers is for the local cluster" in res.output and not out.exists()
        res = _cli(["--grid", "seed=0,1", *SMALL, "--scheduler", addr, "--out", str(out)], mnist_dir)
        assert res.exit_code == 0, res.output
        assert addr in res.output
        with Client(addr, set_as_default=False) as client:  # still up after the sweep
            assert len(client.scheduler_info()["workers"]) == 2
    summary = json.loads((out / "summary.json").read_text())
    assert [c["status"] for c in summary["cells"]] == ["finished", "finished"]
    (group,) = summary["groups"]
    _check_interval(
        group["metrics"]["fidelity"],
        [json.loads((out / f"s{s}" / "eval.json").read_text())["metrics"]["fidelity"]["mean"] for s in (0, 1)],
    )
