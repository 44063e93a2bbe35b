"""Training loop on the exact backend: run folder, determinism, kill-and-resume, bad input, the CLI."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from qmae_qiskit.cli import main
from qmae_qiskit.data import load_mnist
from qmae_qiskit.errors import QMAEError, QMAEWarning
from qmae_qiskit.model.config import QMAEConfig
from qmae_qiskit.train.runs import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    LOSS_PLOT_FILE,
    METRICS_FILE,
    PREVIOUS_CHECKPOINT_FILE,
    RunSettings,
    load_trained,
    read_checkpoint,
    read_metrics,
)
from qmae_qiskit.train.training import TrainOptions, epoch_order, select_data, train


@pytest.fixture(scope="module")
def mnist8(mnist_dir):
    return load_mnist(mnist_dir, train=True, image_size=8, limit=300)


def _settings(**kw) -> RunSettings:
    base = dict(
        backend="exact",
        config=QMAEConfig(image_size=8),
        mask_ratio=0.25,
        epochs=3,
        batch_size=16,
        train_samples=40,
        val_samples=20,
        lr=0.05,
        seed=7,
        checkpoint_every=4,
    )
    base.update(kw)
    return RunSettings(**base)


def test_run_folder_contents_and_learning(tmp_path, mnist8):
    s = _settings()
    res = train(s, tmp_path / "run", select_data(mnist8, s), TrainOptions(progress=False))
    files = {p.name for p in (tmp_path / "run").iterdir()}
    assert {CONFIG_FILE, METRICS_FILE, CHECKPOINT_FILE, LOSS_PLOT_FILE} <= files
    assert not [f for f in files if f.endswith(".tmp")]
    recs = read_metrics(tmp_path / "run")
    assert [r["step"] for r in recs] == list(range(1, s.total_steps + 1)) and s.total_steps == 9
    assert [r["samples"] for r in recs[:3]] == [16, 16, 8]  # last batch of an epoch is partial
    assert sum(1 for r in recs if "val_fidelity" in r) == s.epochs
    for r in recs:
        assert r["loss"] == pytest.approx(1 - r["fidelity"], abs=1e-12)
    first, last = recs[0]["loss"], sum(r["loss"] for r in recs[-3:]) / 3
    assert last < first - 0.02  # Adam on 1 - <Z> reduces the loss
    trained = load_trained(tmp_path / "run")
    assert trained.kind == "qmae" and trained.cfg == s.config and trained.finished and trained.step == 9
    assert trained.mask_ratio == 0.25 and trained.seed == 7
    assert trained.theta.dtype == torch.float64 and torch.equal(trained.theta, res.model.theta.detach())
    assert torch.equal(trained.token, res.model.token.detach())
    assert json.loads((tmp_path / "run" / CONFIG_FILE).read_text())["settings"]["lr"] == 0.05
    # the model read back computes the same fidelities
    module = trained.module()
    x = mnist8.images[:4]
    from qmae_qiskit.model.masking import sample_mask_indices

    idx = sample_mask_indices(s.config, 0.25, mnist8.indices[:4], 7)
    assert torch.allclose(module(x, idx), res.model(x, idx).detach(), atol=0, rtol=0)


def test_same_seed_same_parameters_and_order_depends_only_on_seed_and_epoch(tmp_path, mnist8):
    s = _settings(epochs=1, model="qae")
    a = train(s, tmp_path / "a", select_data(mnist8, s), TrainOptions(progress=False, plot=False))
    b = train(s, tmp_path / "b", select_data(mnist8, s), TrainOptions(progress=False, plot=False))
    assert torch.equal(a.model.theta, b.model.theta) and a.model.token is None
    assert torch.equal(epoch_order(50, 1, 3), epoch_order(50, 1, 3))
    assert not torch.equal(epoch_order(50, 1, 3), epoch_order(50, 1, 4))
    c = train(
        s.model_copy(update={"seed": 8}),
        tmp_path / "c",
        select_data(mnist8, s),
        TrainOptions(progress=False, plot=False),
    )
    assert not torch.equal(a.model.theta, c.model.theta)


@pytest.mark.parametrize("kill_at", [6, 8])  # right after a checkpoint (step 4 + 2) and mid-interval
def test_kill_and_resume_loses_nothing(tmp_path, mnist8, kill_at, train_killed_at):
    s = _settings()
    data = select_data(mnist8, s)
    full = train(s, tmp_path / "full", data, TrainOptions(progress=False, plot=False))
    train_killed_at(s, tmp_path / "cut", data, kill_at)
    assert load_trained(tmp_path / "cut").step == 4 * (kill_at // 4)  # last checkpoint before the kill
    assert len(read_metrics(tmp_path / "cut")) == kill_at  # steps after the checkpoint are re-done on resume
    resumed = train(s, tmp_path / "cut", data, TrainOptions(progress=False, resume=True))
    assert resumed.start_step == 4 * (kill_at // 4)
    assert torch.equal(resumed.model.theta, full.model.theta)
    assert torch.equal(resumed.model.token, full.model.token)
    a, b = read_metrics(tmp_path / "full"), read_metrics(tmp_path / "cut")
    assert [r["step"] for r in b] == list(range(1, 10))
    assert [r["loss"] for r in a] == [r["loss"] for r in b]
    assert [r.get("val_fidelity") for r in a] == [r.get("val_fidelity") for r in b]


def test_torn_metrics_line_is_dropped_on_resume(tmp_path, mnist8, train_killed_at):
    s = _settings(epochs=1)
    data = select_data(mnist8, s)
    train_killed_at(s, tmp_path / "r", data, 2)
    with open(tmp_path / "r" / METRICS_FILE, "a") as fh:
        fh.write('{"step": 3, "los')  # a write cut by the kill
    train(s, tmp_path / "r", data, TrainOptions(progress=False, resume=True, plot=False))
    assert [r["step"] for r in read_metrics(tmp_path / "r")] == [1, 2, 3]


def test_resume_refuses_other_settings_and_new_run_refuses_existing_folder(tmp_path, mnist8):
    s = _settings(epochs=1)
    data = select_data(mnist8, s)
    train(s, tmp_path / "r", data, TrainOptions(progress=False, plot=False))
    before = {p.name: p.read_bytes() for p in (tmp_path / "r").iterdir()}
    with pytest.raises(QMAEError, match="different configuration.*lr"):
        train(s.model_copy(update={"lr": 0.1}), tmp_path / "r", data, TrainOptions(progress=False, resume=True))
    with pytest.raises(QMAEError, match="already exists"):
        train(s, tmp_path / "r", data, TrainOptions(progress=False))
    assert {p.name: p.read_bytes() for p in (tmp_path / "r").iterdir()} == before
    # more epochs is allowed: training continues from the checkpoint
    more = train(
        s.model_copy(update={"epochs": 2}), tmp_path / "r", data, TrainOptions(progress=False, resume=True, plot=False)
    )
    assert more.start_step == 3 and more.steps == 6
    with pytest.raises(QMAEError, match="--epochs 2 or more"):
        train(s, tmp_path / "r", data, TrainOptions(progress=False, resume=True))


def test_the_two_newest_checkpoints_are_kept(tmp_path, mnist8):
    s = _settings()  # 9 steps, a checkpoint every 4 and at the end: 0, 4, 8, 9
    train(s, tmp_path / "r", select_data(mnist8, s), TrainOptions(progress=False, plot=False))
    assert read_checkpoint(tmp_path / "r" / CHECKPOINT_FILE, s).step == 9
    assert read_checkpoint(tmp_path / "r" / PREVIOUS_CHECKPOINT_FILE, s).step == 8
    assert sorted(p.name for p in (tmp_path / "r").iterdir() if ".pt" in p.name) == [
        PREVIOUS_CHECKPOINT_FILE,
        CHECKPOINT_FILE,
    ]


def test_a_truncated_newest_checkpoint_falls_back_to_the_previous_one(tmp_path, mnist8):
    s = _settings(epochs=1)  # checkpoints at steps 0 and 3
    train(s, tmp_path / "r", select_data(mnist8, s), TrainOptions(progress=False, plot=False))
    ckpt = tmp_path / "r" / CHECKPOINT_FILE
    ckpt.write_bytes(ckpt.read_bytes()[:100])
    with pytest.warns(
        QMAEWarning, match=r"checkpoint.pt is unusable .*previous checkpoint, checkpoint.prev.pt \(step 0\)"
    ):
        trained = load_trained(tmp_path / "r")
    assert trained.step == 0 and not trained.finished
    prev = tmp_path / "r" / PREVIOUS_CHECKPOINT_FILE
    prev.write_bytes(b"not a checkpoint")
    with pytest.raises(QMAEError, match="both unusable"):
        load_trained(tmp_path / "r")
    with pytest.raises(QMAEError, match="does not exist"):
        load_trained(tmp_path / "nope")


def test_resume_after_a_bad_newest_checkpoint_goes_on_from_the_previous_one_bit_for_bit(
    tmp_path, mnist8, train_killed_at
):
    s = _settings()  # checkpoints at 0, 4, 8, 9
    data = select_data(mnist8, s)
    full = train(s, tmp_path / "full", data, TrainOptions(progress=False, plot=False))
    train_killed_at(s, tmp_path / "cut", data, 8)  # newest: step 8, previous: step 4
    ckpt = tmp_path / "cut" / CHECKPOINT_FILE
    ckpt.write_bytes(ckpt.read_bytes()[: len(ckpt.read_bytes()) // 2])  # a write cut short
    with pytest.warns(QMAEWarning, match="step 4"):
        resumed = train(s, tmp_path / "cut", data, TrainOptions(progress=False, plot=False, resume=True))
    assert resumed.start_step == 4 and resumed.steps == 9
    assert torch.equal(resumed.model.theta, full.model.theta) and torch.equal(resumed.model.token, full.model.token)
    a, b = read_metrics(tmp_path / "full"), read_metrics(tmp_path / "cut")
    assert [r["step"] for r in b] == list(range(1, 10)) and [r["loss"] for r in a] == [r["loss"] for r in b]
    assert (tmp_path / "cut" / f"{CHECKPOINT_FILE}.unreadable").is_file()  # kept aside, never "previous"
    assert read_checkpoint(tmp_path / "cut" / PREVIOUS_CHECKPOINT_FILE, s).step == 8
    assert load_trained(tmp_path / "cut").step == 9


def test_a_failed_background_write_stops_training_with_its_error(tmp_path, mnist8, monkeypatch):
    import qmae_qiskit.train.runs as runs

    def disk_full(run_dir, data):
        raise OSError(28, "No space left on device")

    s = _settings(epochs=1)
    train(s, tmp_path / "r", select_data(mnist8, s), TrainOptions(progress=False, plot=False))  # a run to resume
    monkeypatch.setattr(runs, "write_checkpoint_bytes", disk_full)
    with pytest.raises(OSError, match="No space"):
        train(
            s.model_copy(update={"epochs": 3}),
            tmp_path / "r",
            select_data(mnist8, s),
            TrainOptions(resume=True, progress=False),
        )
    assert load_trained(tmp_path / "r").step == 3  # the checkpoints on disk are untouched


def test_too_few_images_is_a_clear_error(mnist8):
    with pytest.raises(QMAEError, match="ask for fewer"):
        select_data(mnist8, _settings(train_samples=290, val_samples=20))


# ------------------------------------------------------------------------------------------------------ CLI
def _cli(args, mnist_dir):
    return CliRunner().invoke(main, ["train", "--data-dir", str(mnist_dir), "--no-progress", *args])


def test_cli_trains_resumes_and_reports(tmp_path, mnist_dir):
    args = [
        "--backend",
        "exact",
        "--image-size",
        "8",
        "--train-images",
        "32",
        "--val-images",
        "8",
        "--batch-size",
        "16",
        "--epochs",
        "2",
        "--out",
        str(tmp_path),
        "--seed",
        "3",
    ]
    res = _cli(args, mnist_dir)
    assert res.exit_code == 0, res.output
    assert "Training QMAE on exact: 32 MNIST images 8x8" in res.output and "Done: 4 steps" in res.output
    run = tmp_path / "qmae-exact-L8-m0.25-s3"
    assert load_trained(run).step == 4
    again = _cli(args, mnist_dir)  # a second run gets a fresh folder, the first is untouched
    assert again.exit_code == 0 and (tmp_path / "qmae-exact-L8-m0.25-s3-2").is_dir()
    more = _cli(["--out", str(tmp_path), "--name", run.name, "--resume", "--epochs", "3"], mnist_dir)
    assert more.exit_code == 0, more.output
    assert "Resuming" in more.output and "steps 5..6" in more.output
    bad = _cli(["--out", str(tmp_path), "--name", run.name, "--resume", "--lr", "0.5"], mnist_dir)
    assert bad.exit_code == 2 and bad.output.count("\n") == 1 and "different configuration" in bad.output


@pytest.mark.parametrize(
    "args,match",
    [
        (["--mask-ratio", "0.3"], "mask ratio 0.3"),
        (["--mask-ratio", "0.125", "--patch-height", "8", "--patch-width", "8"], "use one of"),
        (["--backend", "qpu"], "Invalid value for '--backend'"),
        (["--backend", "exact", "--shots", "100"], "need --backend aer_simulator"),
        (["--resume", "--name", "missing"], "does not exist"),
        (["--backend", "aer_simulator", "--precision", "float32"], "exact only"),
        (["--backend", "aer_simulator", "--shots", "100", "--gradient", "adjoint"], "noiseless"),
    ],
)
def test_cli_bad_input(tmp_path, mnist_dir, args, match):
    res = _cli(["--image-size", "8", "--train-images", "8", "--out", str(tmp_path), *args], mnist_dir)
    assert res.exit_code == 2 and match in res.output
    assert not any(tmp_path.iterdir())


def test_cli_missing_data_folder(tmp_path):
    res = CliRunner().invoke(
        main, ["train", "--data-dir", str(tmp_path / "none"), "--out", str(tmp_path / "runs"), "--no-progress"]
    )
    assert res.exit_code == 2 and "no MNIST data" in res.output and "--data-dir" in res.output
    assert not (tmp_path / "runs").exists()


def _spawn_train(args, mnist_dir):
    import subprocess
    import sys

    code = "from qmae_qiskit.cli import main; main()"
    return subprocess.Popen(
        [sys.executable, "-c", code, "train", "--data-dir", str(mnist_dir), "--no-progress", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_steps(run, proc, steps: int, timeout: float = 120.0) -> None:
    import time

    t0 = time.time()
    while time.time() - t0 < timeout:
        if len(read_metrics(run)) >= steps:
            return
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before step {steps}: {proc.communicate()}")
        time.sleep(0.005)
    raise AssertionError("timed out waiting for the run")


@pytest.mark.parametrize("sig", ["SIGKILL", "SIGINT"])
def test_a_real_process_killed_then_resumed_ends_like_an_uninterrupted_run(tmp_path, mnist_dir, sig):
    import signal

    args = [
        "--backend",
        "exact",
        "--image-size",
        "8",
        "--train-images",
        "200",
        "--val-images",
        "10",
        "--batch-size",
        "2",
        "--epochs",
        "2",
        "--checkpoint-every",
        "7",
        "--seed",
        "2",
        "--out",
        str(tmp_path),
    ]
    run = tmp_path / "cut"
    proc = _spawn_train([*args, "--name", "cut"], mnist_dir)
    _wait_for_steps(run, proc, 25)
    proc.send_signal(getattr(signal, sig))
    _out, err = proc.communicate(timeout=60)
    done = load_trained(run)
    assert not done.finished and 0 < done.step < 200
    if sig == "SIGINT":  # Ctrl-C: the current step is finished and checkpointed, the user is told how to go on
        assert proc.returncode == 130 and "--resume" in err
        assert done.step == len(read_metrics(run))
    resumed = _cli([*args, "--name", "cut", "--resume"], mnist_dir)
    assert resumed.exit_code == 0, resumed.output
    full = _cli([*args, "--name", "full"], mnist_dir)
    assert full.exit_code == 0, full.output
    a, b = load_trained(run), load_trained(tmp_path / "full")
    assert a.finished and a.step == b.step == 200
    assert torch.equal(a.theta, b.theta) and torch.equal(a.token, b.token)
    assert [r["loss"] for r in read_metrics(run)] == [r["loss"] for r in read_metrics(tmp_path / "full")]


def test_resume_on_other_images_is_refused(tmp_path, mnist8, train_killed_at):
    s = _settings(epochs=1)
    data = select_data(mnist8, s)
    train_killed_at(s, tmp_path / "r", data, 1)
    other = select_data(mnist8.subset(slice(1, None)), s)
    with pytest.raises(QMAEError, match="not the ones"):
        train(s, tmp_path / "r", other, TrainOptions(progress=False, resume=True))
    assert len(read_metrics(tmp_path / "r")) == 1


def test_cli_reads_the_data_folder_from_the_environment(tmp_path, mnist_dir):
    res = CliRunner(env={"QMAE_DATA_DIR": str(mnist_dir)}).invoke(
        main,
        [
            "train",
            "--image-size",
            "4",
            "--train-images",
            "4",
            "--val-images",
            "0",
            "--batch-size",
            "2",
            "--out",
            str(tmp_path),
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "qmae-exact-L4-m0.25-s0" / CONFIG_FILE).read_text())["data_dir"] == str(mnist_dir)


def test_cli_resume_with_a_corrupt_checkpoint_changes_nothing(tmp_path, mnist_dir):
    args = [
        "--image-size",
        "4",
        "--train-images",
        "4",
        "--val-images",
        "0",
        "--batch-size",
        "2",
        "--epochs",
        "2",
        "--out",
        str(tmp_path),
        "--name",
        "r",
    ]
    assert _cli(args, mnist_dir).exit_code == 0
    for name in (CHECKPOINT_FILE, PREVIOUS_CHECKPOINT_FILE):
        (tmp_path / "r" / name).write_bytes(b"not a checkpoint")
    before = {p.name: p.read_bytes() for p in (tmp_path / "r").iterdir()}
    res = _cli([*args, "--resume", "--epochs", "3"], mnist_dir)
    assert res.exit_code == 2 and "both unusable" in res.output.splitlines()[-1]
    assert {p.name: p.read_bytes() for p in (tmp_path / "r").iterdir()} == before


def test_cli_resume_with_a_truncated_newest_checkpoint_warns_once_and_goes_on(tmp_path, mnist_dir):
    args = ["--image-size", "4", "--train-images", "4", "--val-images", "0", "--batch-size", "2"]
    args += ["--epochs", "2", "--checkpoint-every", "1", "--out", str(tmp_path), "--name", "r"]
    assert _cli(args, mnist_dir).exit_code == 0  # 4 steps: newest step 4, previous step 3
    ckpt = tmp_path / "r" / CHECKPOINT_FILE
    ckpt.write_bytes(ckpt.read_bytes()[:50])
    res = _cli([*args, "--resume", "--epochs", "3"], mnist_dir)
    assert res.exit_code == 0, res.output
    warnings = [line for line in res.output.splitlines() if line.startswith("Warning:")]
    assert len(warnings) == 1 and "previous checkpoint" in warnings[0] and "(step 3)" in warnings[0]
    assert "steps 4..6" in res.output and load_trained(tmp_path / "r").step == 6
