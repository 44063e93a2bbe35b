"""The CLI says each thing one way: a walk over every click command checks the vocabulary (issue 17, item 2)."""

from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner

from qmae_qiskit.cli import main
from qmae_qiskit.cli.options import DATA_ENVVAR, DEFAULT_OPTIMIZATION_LEVEL
from qmae_qiskit.cli.spellings import QMAECommand, rewrite_old_spellings
from qmae_qiskit.reports.depth import comparable

# spellings the vocabulary replaced: none may be a visible option of any command
OLD_SPELLINGS = {
    "--limit",
    "--samples",
    "--eval-limit",
    "--test-limit",
    "--held-out",
    "--train-samples",
    "--val-samples",
    "--classifier-limit",
    "--seed-simulator",
    "--seed-transpiler",
}


def leaves(cmd: click.Command = main, path: tuple[str, ...] = ()) -> list[tuple[str, click.Command]]:
    """Every leaf command under ``cmd``, with its name path ("study noise")."""
    if isinstance(cmd, click.Group):
        return [leaf for name, sub in sorted(cmd.commands.items()) for leaf in leaves(sub, (*path, name))]
    return [(" ".join(path), cmd)]


def options(cmd: click.Command) -> list[click.Option]:
    return [p for p in cmd.params if isinstance(p, click.Option) and not p.hidden]


def option(cmd: click.Command, flag: str) -> click.Option | None:
    return next((o for o in options(cmd) if flag in o.opts), None)


LEAVES = leaves()


def test_the_walk_sees_every_command():
    names = {name for name, _ in LEAVES}
    assert len(LEAVES) >= 19
    assert {"evaluate", "submit", "study noise", "study frontier", "jobs fetch", "report check", "train"} <= names
    assert all(isinstance(cmd, QMAECommand) for _, cmd in LEAVES)


@pytest.mark.parametrize("name,cmd", LEAVES, ids=[n for n, _ in LEAVES])
def test_vocabulary(name, cmd):
    flags = {f for o in options(cmd) for f in o.opts + o.secondary_opts}
    assert not flags & OLD_SPELLINGS, f"{name} shows old spellings {flags & OLD_SPELLINGS}"
    assert option(cmd, "--json") is not None and option(cmd, "--json").is_flag, f"{name} has no --json"
    if (out := option(cmd, "--out")) is not None:
        assert isinstance(out.type, click.Path) and not out.type.file_okay and out.type.dir_okay, f"{name} --out"
    if (data := option(cmd, "--data-dir")) is not None:
        assert data.envvar == DATA_ENVVAR, f"{name} --data-dir does not read ${DATA_ENVVAR}"
    if (level := option(cmd, "--optimization-level")) is not None:
        assert level.default == DEFAULT_OPTIMIZATION_LEVEL, f"{name} --optimization-level"
    if (seed := option(cmd, "--seed")) is not None:  # training (and training masks) only
        assert not any(w in (seed.help or "").lower() for w in ("simulator", "transpil")), f"{name} --seed"
    for o in options(cmd):
        if o.name in ("images", "train_images", "train_samples"):
            assert isinstance(o.type, click.IntRange) and o.type.min is not None and o.type.min >= 1


def test_every_command_that_evaluates_takes_images():
    evaluating = ["evaluate", "submit", "study noise", "study frontier", "sweep", "reproduce", "figure8"]
    evaluating += ["classifier train", "report loaders"]
    for name, cmd in LEAVES:
        if name in evaluating:
            assert option(cmd, "--images") is not None, name


def test_one_execution_block():
    """evaluate, submit and the studies share the execution options (same names, types, help)."""
    shared = ["--noise-model", "--fidelity-circuit", "--transpiler-seed", "--simulator-seed", "--mask-seed"]
    cmds = {n: c for n, c in LEAVES if n in ("evaluate", "submit", "study noise", "study frontier")}
    assert len(cmds) == 4
    for flag in shared:
        helps = {option(c, flag).help for c in cmds.values()}
        assert len(helps) == 1, flag


def test_rewrite_old_spellings(capsys):
    args = ["RUN", "--limit", "5", "--limit=6", "--images", "7", "--", "--limit"]
    assert rewrite_old_spellings(args, {"--limit": "--images"}) == [
        "RUN",
        "--images",
        "5",
        "--images=6",
        "--images",
        "7",
        "--",
        "--limit",
    ]
    assert capsys.readouterr().err.count("warning: --limit is deprecated, use --images") == 2


def test_old_spellings_still_work_with_a_notice(tmp_path):
    """Old and new spellings give the same result; the old one prints one notice line on stderr."""
    runner = CliRunner()
    new = runner.invoke(
        main,
        ["report", "depth", "--backend", "aer_simulator", "--image-size", "4", "--json"]
        + ["--transpiler-seed", "7", "--out", str(tmp_path / "n")],
    )
    old = runner.invoke(
        main,
        ["report", "depth", "--backend", "aer_simulator", "--image-size", "4", "--json"]
        + ["--seed", "7", "--out", str(tmp_path / "o")],
    )
    assert new.exit_code == 0 and old.exit_code == 0, old.output
    assert "warning: --seed is deprecated, use --transpiler-seed" in old.stderr
    assert "deprecated" not in new.stderr
    a, b = json.loads(new.stdout), json.loads(old.stdout)
    assert a["seed_transpiler"] == b["seed_transpiler"] == 7
    assert comparable(a) == comparable(b)  # the same report, timings aside


def test_old_image_count_spelling(tmp_path, mnist_dir):
    """classifier train --limit/--test-limit: the old spellings set --train-images/--images."""
    args = ["classifier", "train", "--data-dir", str(mnist_dir), "--epochs", "1", "--json", "--image-size", "8"]
    res = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "c"), "--limit", "40", "--test-limit", "30"])
    assert res.exit_code == 0, res.output
    assert res.stderr.splitlines() == [
        "warning: --limit is deprecated, use --train-images",
        "warning: --test-limit is deprecated, use --images",
    ]
    info = json.loads(res.stdout)
    assert info["n_train"] == 40 and info["n_test"] == 30


def test_data_dir_from_the_environment(tmp_path):
    """--data-dir reads $QMAE_DATA_DIR: an empty folder there is the folder the command looks in."""
    empty = tmp_path / "empty"
    empty.mkdir()
    res = CliRunner(env={DATA_ENVVAR: str(empty)}).invoke(
        main, ["classifier", "train", "--out", str(tmp_path / "c"), "--train-images", "8"]
    )
    assert res.exit_code == 2 and str(empty) in res.output
    assert not (tmp_path / "c").exists()


def test_out_is_a_folder(tmp_path):
    """A file where --out wants a folder: click's one error, exit 2."""
    f = tmp_path / "file"
    f.write_text("x")
    res = CliRunner().invoke(main, ["report", "depth", "--backend", "aer_simulator", "--out", str(f)])
    assert res.exit_code == 2 and "is a file" in res.output


def test_help_hides_old_spellings():
    res = CliRunner().invoke(main, ["evaluate", "--help"])
    assert res.exit_code == 0 and "--images" in res.output and "--limit" not in res.output
