"""--device auto|cpu|cuda: one line and nothing written without a GPU; on a GPU, float64 results equal the CPU's.

The GPU tests run only where torch sees a CUDA device (never in CI, not on the development machine); each
compares the GPU against the CPU computation it replaces, to 1e-9.
"""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

from qmae_qiskit.cli import main
from qmae_qiskit.device import resolve_device, torch_threads
from qmae_qiskit.errors import QMAEError
from qmae_qiskit.model.config import QMAEConfig

GPU = torch.cuda.is_available()
needs_gpu = pytest.mark.skipif(not GPU, reason="no CUDA GPU visible to torch: the GPU path cannot be compared here")
no_gpu = pytest.mark.skipif(GPU, reason="a CUDA GPU is visible: --device cuda is valid here")


def test_auto_is_cpu_without_a_gpu_and_names_are_checked():
    assert resolve_device("auto").type == ("cuda" if GPU else "cpu")
    assert resolve_device("cpu") == torch.device("cpu") and resolve_device(None).type in ("cpu", "cuda")
    with pytest.raises(QMAEError, match="unknown device 'tpu'"):
        resolve_device("tpu")


def test_thread_pin_is_undone():
    old = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == old


@no_gpu
@pytest.mark.parametrize(
    "args",
    [
        ["train", "--epochs", "1", "--train-images", "8", "--batch-size", "8", "--out", "{out}"],
        ["classifier", "train", "--train-images", "16", "--epochs", "1", "--out", "{out}"],
        ["evaluate", "{run}", "--out", "{out}"],
        ["sweep", "--grid", "latent_qubits=7", "--epochs", "1", "--train-images", "8", "--out", "{out}"],
        ["reproduce", "--epochs", "1", "--train-images", "8", "--out", "{out}"],
    ],
    ids=["train", "classifier", "evaluate", "sweep", "reproduce"],
)
def test_cuda_without_a_gpu_is_one_line_exit_2_nothing_written(tmp_path, mnist_dir, args):
    out, run = tmp_path / "out", tmp_path / "run"
    run.mkdir()  # evaluate's run folder exists, so the device is what it refuses
    argv = [a.format(out=out, run=run) for a in args] + ["--device", "cuda", "--data-dir", str(mnist_dir)]
    res = CliRunner().invoke(main, argv)
    assert res.exit_code == 2, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "--device cuda" in lines[0] and "no CUDA GPU" in lines[0], res.output
    assert not out.exists() and list(run.iterdir()) == []


# ---------------------------------------------------------------------------------------------- on a GPU only
def _batch(cfg: QMAEConfig, n: int, seed: int = 0):
    from qmae_qiskit.model.masking import sample_mask_indices
    from qmae_qiskit.train.models import init_theta

    g = torch.Generator().manual_seed(seed)
    images = torch.rand(n, cfg.image_size, cfg.image_size, generator=g, dtype=torch.float64)
    patch_idx = sample_mask_indices(cfg, 0.25, torch.arange(n), seed, epoch=0)
    token = torch.rand(cfg.n_token, generator=g, dtype=torch.float64) + 0.1
    return init_theta(cfg, "uniform", seed), images, patch_idx, token


@needs_gpu
@pytest.mark.parametrize("n", [8, 300])  # both routes of exact.fidelity: blocks on the states, and U built once
@pytest.mark.parametrize("token", ["shared", "positional"])  # positional: a slot per pixel in the kernel
def test_exact_path_fidelity_and_gradients_on_gpu_equal_cpu(n, token):
    from qmae_qiskit.train.models import ExactFidelity

    cfg = QMAEConfig(token=token)
    theta, images, patch_idx, token = _batch(cfg, n)
    out = {}
    for dev in ("cpu", "cuda"):
        th, tok = theta.clone().requires_grad_(), token.clone().requires_grad_()
        fid = ExactFidelity(cfg, device=dev).masked(th, images, patch_idx, tok)
        (1 - fid).mean().backward()
        out[dev] = (fid.detach(), th.grad, tok.grad)
    for cpu, gpu in zip(out["cpu"], out["cuda"]):
        assert gpu.device.type == "cpu" and torch.allclose(cpu, gpu, rtol=0, atol=1e-9)


@needs_gpu
def test_exact_executor_reconstruction_on_gpu_equals_cpu():
    from qmae_qiskit.simulate import exact

    cfg = QMAEConfig()
    theta, images, _, _ = _batch(cfg, 64)
    x = images.reshape(64, -1)
    cpu = exact.reconstruct(theta, x, cfg)
    gpu = exact.reconstruct(theta.cuda(), x.cuda(), cfg).cpu()
    assert torch.allclose(cpu, gpu, rtol=0, atol=1e-9)


@needs_gpu
def test_training_on_gpu_ends_where_the_cpu_does(tmp_path, mnist_dir):
    from qmae_qiskit.train.runs import RunSettings
    from qmae_qiskit.train.training import TrainOptions, train

    s = RunSettings(epochs=2, batch_size=16, train_samples=32, checkpoint_every=4)
    cpu = train(s, tmp_path / "cpu", None, TrainOptions(progress=False, plot=False, device="cpu"), data_dir=mnist_dir)
    gpu = train(s, tmp_path / "gpu", None, TrainOptions(progress=False, plot=False, device="cuda"), data_dir=mnist_dir)
    assert torch.allclose(cpu.model.theta, gpu.model.theta, rtol=0, atol=1e-9)
    assert torch.allclose(cpu.model.token, gpu.model.token, rtol=0, atol=1e-9)
