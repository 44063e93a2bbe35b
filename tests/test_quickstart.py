"""The quick start (docs/quickstart.md) works top to bottom as written.

Its commands are taken from the page's ``bash`` blocks and run in order, as a user runs them, in an empty
folder. The one substitution is the data: ``QMAE_DATA_DIR`` points at the first 1,200 training and 50 test
images of MNIST, so the same commands take about a minute. The install line is checked, not run (CI has just
run it).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys

import pytest
from conftest import REPO, write_small_mnist

PAGE = REPO / "docs" / "quickstart.md"
SETUP = ("pip install -e .",)
PROGRAM = "qmae-qiskit"


def page_commands(text: str) -> list[str]:
    """Every command line of the page's ```bash blocks, continuation lines joined, comments dropped."""
    lines: list[str] = []
    for block in re.findall(r"^```bash\n(.*?)^```", text, flags=re.S | re.M):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.split(" #", 1)[0].strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


def test_the_page_holds_only_commands_the_test_runs():
    cmds = page_commands(PAGE.read_text())
    assert [c for c in cmds if c in SETUP] == list(SETUP)
    run = [c for c in cmds if c not in SETUP]
    assert run and all(c.split()[0] == PROGRAM for c in run), run
    assert [c.split()[1] for c in run] == ["train", "evaluate", "study"]


@pytest.mark.slow
def test_quickstart_runs_top_to_bottom(tmp_path, mnist_dir):
    data = write_small_mnist(mnist_dir, tmp_path / "mnist", 1200, 50)
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "QMAE_DATA_DIR": str(data), "PYTHONPATH": str(REPO), "MPLBACKEND": "Agg"}
    for cmd in page_commands(PAGE.read_text()):
        if cmd in SETUP:
            continue
        argv = [sys.executable, "-m", "qmae_qiskit", *shlex.split(cmd)[1:]]
        res = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True, timeout=900)
        assert res.returncode == 0, f"{cmd}\n{res.stdout}\n{res.stderr}"
        assert "deprecated" not in res.stderr, f"{cmd} uses an old spelling:\n{res.stderr}"
    # what the page says each step leaves behind
    run = work / "runs" / "quickstart"
    assert {"config.json", "metrics.jsonl", "checkpoint.pt", "loss.png", "eval.json"} <= {p.name for p in run.iterdir()}
    scores = json.loads((run / "eval.json").read_text())
    assert scores["n_images"] == 50 and scores["classifier"]["path"] == "runs/classifier-L4"
    assert set(scores["baselines"]) == {"masked", "mean_patch", "position_mean"}
    assert (work / "runs" / "classifier-L4" / "classifier.pt").is_file()
    (study_file,) = (work / "runs" / "quickstart-study").glob("*.json")
    study = json.loads(study_file.read_text())
    err = {m: study["aggregates"][m]["fidelity"]["mean_abs_error"] for m in ("raw", "recommended")}
    assert err["recommended"] < 0.05 < err["raw"], err  # "raw mostly noise; mitigated within a few hundredths"
    assert len(study["per_image"]) == 10
