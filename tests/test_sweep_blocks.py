"""Sweeps for the token ablation: a ``token`` axis, grid files of several ``[[grid]]`` blocks (QAE beside QMAE's
token forms), each cell judged by the classifier of its own seed, and QMAE - QAE paired against the QAE group a
QMAE group agrees with. The end-to-end run's summary is recomputed from the cells' eval.json with scipy."""

from __future__ import annotations

import json
import math
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner
from scipy import stats as sps

from qmae_qiskit.cli import main
from qmae_qiskit.cli.spellings import rewrite_old_spellings
from qmae_qiskit.cli.sweep import TRAIN_KEYS, sweep_cmd
from qmae_qiskit.errors import QMAEError
from qmae_qiskit.experiments import grid as G
from qmae_qiskit.experiments.cells import build_cells
from qmae_qiskit.experiments.stats import CellValues, paired_stats

pytestmark = pytest.mark.timeout(900)

BLOCKS = """
[[grid]]
model = ["qmae"]
layers = [1, 2]
token = ["shared", "positional"]
seed = [0, 1]

[[grid]]
model = ["qae"]
layers = [1, 2]
seed = [0, 1]
"""
SMALL = ["--image-size", "4", "--train-images", "32", "--epochs", "1", "--batch-size", "16", "--val-images", "0"]
SMALL += ["--images", "60", "--classifier-train-images", "100", "--classifier-epochs", "1"]
METRICS = ("fidelity", "cs", "ssim", "accuracy")


def _file(tmp_path: Path, text: str) -> Path:
    f = tmp_path / "g.toml"
    f.write_text(text)
    return f


def test_blocks_build_the_union_of_their_products(tmp_path):
    blocks = G.load_grid_blocks(_file(tmp_path, BLOCKS))
    assert blocks[1] == {"model": ["qae"], "layers": [1, 2], "seed": [0, 1]}
    assert G.union_grid(blocks) == {
        "model": ["qmae", "qae"],
        "layers": [1, 2],
        "token": ["shared", "positional"],
        "seed": [0, 1],
    }
    cells = build_cells(blocks, {"image_size": 4, "train_samples": 8}, {"per_seed": True})
    names = [c.name for c in cells]
    assert len(names) == 8 + 4 and names[:2] == ["qmae-l1-tok-shared-s0", "qmae-l1-tok-shared-s1"]
    assert names[-1] == "qae-l2-s1"
    by = {c.name: c for c in cells}
    assert by["qmae-l2-tok-positional-s1"].settings.config.token == "positional"
    assert by["qae-l2-s1"].settings.config.token == "shared" and by["qae-l2-s1"].settings.config.layers == 2
    assert all(c.classifier.seed == c.settings.seed for c in cells)  # each judged by its own seed's classifier
    assert {c.classifier.seed for c in build_cells(blocks, {"image_size": 4})} == {0}
    with pytest.raises(QMAEError, match="more than one|2 \\[\\[grid\\]\\] blocks"):
        G.load_grid_file(_file(tmp_path, BLOCKS))
    assert G.load_grid_blocks(_file(tmp_path, "[grid]\nseed = [0, 1]\n")) == [{"seed": [0, 1]}]


@pytest.mark.parametrize(
    "text, words",
    [
        ('[[grid]]\nmodel = ["qae"]\ntoken = ["positional"]\n', "needs --model qmae"),
        ("[[grid]]\nseed = [0]\n[[grid]]\nseed = [0]\n", "grid cells collide"),
        ('[[grid]]\ntoken = ["pos"]\n', "unknown value 'pos' for token"),
        ("[[grid]]\n", "has no axes"),
    ],
)
def test_bad_blocks_are_one_line(tmp_path, text, words):
    with pytest.raises(QMAEError, match=words):
        build_cells(G.load_grid_blocks(_file(tmp_path, text)), {"image_size": 4})


def test_per_seed_classifier_and_a_swept_classifier_seed_conflict():
    with pytest.raises(QMAEError, match="classifier_seed is swept and also tied"):
        build_cells(G.parse_grid_args(["seed=0,1", "classifier_seed=0,1"]), {"image_size": 4}, {"per_seed": True})


def _cv(model: str, seed: int, acc: float, **key) -> CellValues:
    k = (("model", model), *key.items())
    return CellValues(f"{model}-{key}-{seed}", k, model, seed, seed, {"accuracy": acc}, {})


def test_qmae_groups_pair_with_the_qae_group_they_agree_with():
    cells = [_cv("qae", s, 0.5 + 0.01 * s + 0.1 * L, layers=L) for L in (1, 2) for s in (0, 1, 2)]
    cells += [
        _cv("qmae", s, 0.6 + 0.02 * s * s + 0.1 * L, layers=L, token=t) for L in (1, 2) for t in "ab" for s in (0, 1, 2)
    ]
    paired = {tuple(p.key.items()): p for p in paired_stats(cells, ["accuracy"])}
    assert set(paired) == {(("layers", L), ("token", t)) for L in (1, 2) for t in "ab"}
    for L in (1, 2):
        diffs = [(0.6 + 0.02 * s * s + 0.1 * L) - (0.5 + 0.01 * s + 0.1 * L) for s in (0, 1, 2)]
        st = paired[(("layers", L), ("token", "a"))].metrics["accuracy"]
        mean = sum(diffs) / 3
        half = sps.t.ppf(0.975, 2) * math.sqrt(sum((d - mean) ** 2 for d in diffs) / 2) / math.sqrt(3)
        assert st.mean == pytest.approx(mean, abs=1e-12) and st.ci95 == pytest.approx([mean - half, mean + half])
        assert all(
            b.startswith("qae") and f"'layers': {L}" in b for _, b in paired[(("layers", L), ("token", "a"))].pairs
        )
    # a product grid pairs exactly as before: equal keys only
    same = [_cv("qae", 0, 0.5, layers=1), _cv("qmae", 0, 0.7, layers=1), _cv("qmae", 0, 0.7, layers=2)]
    (only,) = paired_stats(same, ["accuracy"])
    assert only.key == {"layers": 1} and only.metrics["accuracy"].mean == pytest.approx(0.2)


def test_cli_per_seed_with_an_explicit_classifier_seed_is_one_line(tmp_path, mnist_dir):
    out = tmp_path / "s"
    args = ["sweep", "--grid", "seed=0,1", "--classifier-per-seed", "--classifier-seed", "1", *SMALL]
    res = CliRunner().invoke(main, [*args, "--out", str(out), "--data-dir", str(mnist_dir)])
    assert res.exit_code == 2 and "drop --classifier-seed" in res.output
    assert len(res.output.strip().splitlines()) == 1 and not out.exists()


def test_a_block_sweep_runs_and_its_summary_recomputes(tmp_path, mnist_dir):
    text = '[[grid]]\nmodel = ["qmae"]\ntoken = ["shared", "positional"]\nseed = [0, 1]\n'
    text += '[[grid]]\nmodel = ["qae"]\nseed = [0, 1]\n'
    out = tmp_path / "sweep"
    args = ["sweep", "--grid-file", str(_file(tmp_path, text)), "--classifier-per-seed", *SMALL, "--workers", "2"]
    res = CliRunner().invoke(main, [*args, "--out", str(out), "--data-dir", str(mnist_dir)])
    assert res.exit_code == 0, res.output
    assert {p.name for p in (out / "classifiers").iterdir()} == {"L4-c0", "L4-c1"}
    evs = {p.parent.name: json.loads(p.read_text()) for p in out.glob("*/eval.json")}
    assert len(evs) == 6
    for name, ev in evs.items():
        assert Path(ev["classifier"]["path"]).name == f"L4-c{name[-1]}"
        assert ev["config"].get("token", "shared") == ("positional" if "positional" in name else "shared")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["grid"]["token"] == ["shared", "positional"] and "token" not in summary["groups"][-1]["key"]
    paired = {p["key"]["token"]: p for p in summary["paired"]}
    for token in ("shared", "positional"):
        for m in METRICS:
            d = [
                evs[f"qmae-tok-{token}-s{s}"]["metrics"][m]["mean"] - evs[f"qae-s{s}"]["metrics"][m]["mean"]
                for s in (0, 1)
            ]
            mean, sd = sum(d) / 2, abs(d[0] - d[1]) / math.sqrt(2)
            half = sps.t.ppf(0.975, 1) * sd / math.sqrt(2)
            st = paired[token]["metrics"][m]
            assert st["mean"] == pytest.approx(mean, abs=1e-12) and st["ci95"] == pytest.approx(
                [mean - half, mean + half], abs=1e-12
            )
    assert len(list((out / "plots").glob("*-vs-token.png"))) == 4


def test_the_committed_ablation_command_still_parses_in_its_old_spellings():
    """results/sweeps/ablation.toml records its command with the spellings of its day (--train-samples,
    --val-samples): they still parse to the Table-1 protocol, and the file builds the union of its blocks' cells
    (QMAE layers x token, QAE layers, the best QMAE form at other masks), each judged by its own seed's
    classifier."""
    root = Path(__file__).resolve().parents[1]
    grid_file = root / "results" / "sweeps" / "ablation.toml"
    lines = [ln.lstrip("#").strip().rstrip("\\").strip() for ln in grid_file.read_text().splitlines()]
    start = next(i for i, ln in enumerate(lines) if ln.startswith("qmae-qiskit sweep"))
    args = shlex.split(" ".join(lines[start : start + 3]))[2:]
    args = [a if a != "results/sweeps/ablation.toml" else str(grid_file) for a in args]
    with sweep_cmd.make_context("sweep", rewrite_old_spellings(args, sweep_cmd.renamed)) as ctx:
        params = dict(ctx.params)
    assert (params["train_samples"], params["val_samples"], params["epochs"]) == (4500, 500, 40)
    assert params["classifier_per_seed"] and params["images"] is None  # all 10,000 test images
    base = {k: params[k] for k in TRAIN_KEYS}
    base["betas"] = (params["beta1"], params["beta2"])
    blocks = G.load_grid_blocks(grid_file)
    cells = build_cells(blocks, base, {"per_seed": True})
    assert len({c.name for c in cells}) == len(cells) == sum(math.prod(map(len, b.values())) for b in blocks)
    assert all(c.classifier.seed == c.settings.seed for c in cells)
    assert {c.settings.config.layers for c in cells} >= {1, 2, 3, 4}
    positional = [c for c in cells if c.settings.config.token == "positional"]
    assert positional and all(c.settings.model == "qmae" for c in positional)
