"""The positional mask token (``--token positional``): the shared patch plus a learnable term per pixel position.

Checked like the shared token: the fill against a pixel-by-pixel construction, the exact path against the dense
reference and Aer ``EstimatorV2`` (default_precision=0) to 1e-9, the token's gradient (both parts) against the
dense autograd route and finite differences, the Aer training backend (adjoint and parameter shift) against the
exact path, and training, resuming, records and the CLI. Records of the shared token stay as they were.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from qmae_qiskit.cli import main
from qmae_qiskit.data import load_mnist
from qmae_qiskit.model.config import QMAEConfig
from qmae_qiskit.model.masking import insert_token, mask_from_indices, sample_mask_indices, token_fill
from qmae_qiskit.simulate import exact
from qmae_qiskit.train.models import init_token
from qmae_qiskit.train.runs import RunSettings, load_trained, read_checkpoint
from qmae_qiskit.train.training import TrainOptions, select_data, train

TOL = 1e-9
ROOT = Path(__file__).resolve().parents[1]


def _token(cfg: QMAEConfig, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(cfg.n_token, generator=g, dtype=torch.float64) + 0.1


def _grads(out: torch.Tensor, params) -> tuple[torch.Tensor, ...]:
    return torch.autograd.grad(out.sum(), params)


# ------------------------------------------------------------------------------------------------ config + fill
def test_config_counts_and_records_of_the_shared_token_are_unchanged():
    pos = QMAEConfig(image_size=8, token="positional")
    assert pos.n_token_patch == 16 and pos.n_token == 16 + 64 and pos.n_params_qmae == pos.n_theta + 80
    assert pos.model_dump()["token"] == "positional" and QMAEConfig(**pos.model_dump()) == pos
    shared = QMAEConfig(image_size=8)
    assert "token" not in shared.model_dump() and shared.n_token == 16
    with pytest.raises(ValueError, match="token must be one of shared, positional"):
        QMAEConfig(image_size=4, token="learned")
    with pytest.raises(ValueError, match="needs --model qmae"):
        RunSettings(model="qae", config=pos)
    for committed in sorted((ROOT / "results").glob("*/config.json")):  # written before the field existed
        raw = json.loads(committed.read_text())["settings"]["config"]
        assert "token" not in raw and QMAEConfig(**raw).model_dump() == raw


@pytest.mark.parametrize("kw", [{"image_size": 8}, {"image_size": 16, "patch_height": 4, "patch_width": 8}])
def test_fill_is_the_tiled_patch_plus_the_term_of_each_pixel(kw):
    cfg = QMAEConfig(token="positional", **kw)
    token = _token(cfg, 1)
    L, (hp, wp) = cfg.image_size, cfg.patch
    want = torch.empty(L, L, dtype=torch.float64)
    for r in range(L):
        for c in range(L):
            want[r, c] = token[(r % hp) * wp + c % wp] + token[cfg.n_token_patch + r * L + c]
    torch.testing.assert_close(token_fill(cfg, token), want, rtol=0, atol=0)
    shared = token[: cfg.n_token_patch]  # the same patch without its positional term: the paper's fill
    torch.testing.assert_close(token_fill(cfg, shared), want - token[cfg.n_token_patch :].reshape(L, L))
    images = torch.rand(5, L, L, dtype=torch.float64)
    patch = sample_mask_indices(cfg, 0.25, torch.arange(5), 3)
    mask = mask_from_indices(cfg, patch)
    filled = insert_token(images, patch, cfg, token)
    torch.testing.assert_close(filled[mask], want.expand(5, L, L)[mask], rtol=0, atol=0)
    torch.testing.assert_close(filled[~mask], images[~mask], rtol=0, atol=0)
    with pytest.raises(ValueError, match="has 16 values .shared. or 80 .positional., got 17"):
        token_fill(QMAEConfig(image_size=8), torch.ones(17, dtype=torch.float64))


def test_positional_init_starts_as_the_shared_token():
    shared, pos = QMAEConfig(image_size=8), QMAEConfig(image_size=8, token="positional")
    images = torch.rand(20, 8, 8, dtype=torch.float64)
    for how in ("mean", "uniform", "constant"):
        a, b = init_token(shared, how, 3, images), init_token(pos, how, 3, images)
        assert b.numel() == pos.n_token
        torch.testing.assert_close(b[:16], a, rtol=0, atol=0)
        assert not b[16:].any()


# ------------------------------------------------------------------------------------------------ exact path
@pytest.mark.parametrize(
    "kw, ratio, batch",
    [({"image_size": 8}, 0.25, 40), ({"image_size": 16, "patch_height": 4, "patch_width": 8}, 0.125, 140)],
)
def test_masked_fidelity_and_gradients_equal_the_dense_reference(kw, ratio, batch):
    cfg = QMAEConfig(token="positional", **kw)
    g = torch.Generator().manual_seed(batch)
    theta = (torch.rand(cfg.n_theta, dtype=torch.float64, generator=g) * 6).requires_grad_()
    token = (_token(cfg, batch) - 0.3).requires_grad_()  # negative fills too
    images = torch.rand(batch, cfg.image_size, cfg.image_size, dtype=torch.float64, generator=g)
    patch = sample_mask_indices(cfg, ratio, torch.arange(batch), 5)
    got = exact.masked_fidelity(theta, images, patch, token, cfg)  # the kernel route, per-pixel slots
    xm = insert_token(images, patch, cfg, token).reshape(batch, -1)
    want = exact.fidelity_reference(theta, xm, images.reshape(batch, -1), cfg)  # complex einsum, dense gradient
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
    g_got, g_want = _grads(got, (theta, token)), _grads(want, (theta, token))
    assert g_want[1][cfg.n_token_patch :].abs().max() > 1e-4  # the positional term matters
    for a, b in zip(g_got, g_want):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-11)
    # chain rule: the shared entry s moves every pixel in slot s, so its gradient is their positional gradients summed
    L, (hp, wp) = cfg.image_size, cfg.patch
    per_pixel = g_got[1][cfg.n_token_patch :].reshape(L // hp, hp, L // wp, wp).sum((0, 2)).reshape(-1)
    torch.testing.assert_close(g_got[1][: cfg.n_token_patch], per_pixel, rtol=0, atol=1e-12)


def test_token_gradient_matches_finite_differences_on_both_routes():
    cfg = QMAEConfig(image_size=8, token="positional")
    g = torch.Generator().manual_seed(1)
    theta = torch.rand(cfg.n_theta, dtype=torch.float64, generator=g) * 6
    token = _token(cfg, 2)
    images = torch.rand(40, 8, 8, dtype=torch.float64, generator=g)
    patch = sample_mask_indices(cfg, 0.25, torch.arange(40), 0)
    masked_pixels = mask_from_indices(cfg, patch).reshape(40, -1).any(0)
    never = int((~masked_pixels).nonzero()[0]) if (~masked_pixels).any() else None
    for batch in (40, 2):  # the kernel route, and the small-batch route through insert_token
        imgs, pat = images[:batch], patch[:batch]

        def loss(tok, imgs=imgs, pat=pat):
            return (1 - exact.masked_fidelity(theta, imgs, pat, tok, cfg)).mean()

        tok = token.clone().requires_grad_(True)
        grad = torch.autograd.grad(loss(tok), tok)[0]
        hit = mask_from_indices(cfg, pat).reshape(batch, -1).any(0).nonzero()[:, 0]
        picks = [0, cfg.n_token_patch - 1, *(cfg.n_token_patch + int(p) for p in hit[[0, -1]])]
        eps = 1e-6
        for i in picks:
            e = torch.zeros_like(token)
            e[i] = eps
            fd = (loss(token + e) - loss(token - e)) / (2 * eps)
            assert float(grad[i]) == pytest.approx(float(fd), abs=1e-8)
            assert abs(float(grad[i])) > 1e-6
        if batch == 40 and never is not None:
            assert float(grad[cfg.n_token_patch + never]) == 0.0  # a pixel no image masks gets no gradient


def test_exact_fidelity_equals_aer_estimator_with_a_positional_fill():
    from qiskit_aer.primitives import EstimatorV2

    from qmae_qiskit.export import bind_training
    from qmae_qiskit.model.circuits import fidelity_observable, training_circuit

    cfg = QMAEConfig(image_size=4, token="positional")
    qc = training_circuit(cfg)
    bound, want = [], []
    for c in range(3):
        g = torch.Generator().manual_seed(c)
        theta = torch.rand(cfg.n_theta, generator=g, dtype=torch.float64) * 2 * np.pi
        images = torch.rand(1, 4, 4, generator=g, dtype=torch.float64)
        patch = torch.tensor([[c]])
        token = _token(cfg, 10 + c)
        xm = insert_token(images, patch, cfg, token).reshape(1, -1)
        want.append(float(exact.masked_fidelity(theta, images, patch, token, cfg)[0]))
        bound.append(bind_training(qc, theta, xm[0], images.reshape(-1)))
    est = EstimatorV2(options={"default_precision": 0, "backend_options": {"method": "statevector"}})
    got = [float(r.data.evs) for r in est.run([(b, fidelity_observable(qc.num_qubits)) for b in bound]).result()]
    np.testing.assert_allclose(got, want, atol=TOL, rtol=0)


# ------------------------------------------------------------------------------------------------ Aer path
@pytest.mark.parametrize("gradient", ["adjoint", "param-shift"])
def test_aer_training_backend_gives_the_exact_token_gradient(gradient):
    from qmae_qiskit.train.models import build_model
    from qmae_qiskit.train.qnn import AerFidelity

    cfg = QMAEConfig(image_size=4, token="positional")
    g = torch.Generator().manual_seed(50)
    theta = torch.rand(cfg.n_theta, generator=g, dtype=torch.float64) * 2 * np.pi
    images = torch.rand(2, 4, 4, generator=g, dtype=torch.float64)
    patch = sample_mask_indices(cfg, 0.25, torch.arange(2), 1)
    token = _token(cfg, 51)
    aer = AerFidelity(cfg, seed=0, gradient=gradient, input_gradients=True)
    m_aer = build_model("qmae", cfg, theta, token, backend=aer)
    m_exact = build_model("qmae", cfg, theta, token)
    fa, fe = m_aer(images, patch), m_exact(images, patch)
    fa.sum().backward()
    fe.sum().backward()
    # TorchConnector hands back float32: agreement to its rounding (the 1e-9 checks of the circuit are above)
    torch.testing.assert_close(fa.detach(), fe.detach(), atol=1e-6, rtol=0)
    assert m_exact.token.grad[cfg.n_token_patch :].abs().max() > 1e-3
    torch.testing.assert_close(m_aer.token.grad, m_exact.token.grad, atol=1e-5, rtol=0)
    torch.testing.assert_close(m_aer.theta.grad, m_exact.theta.grad, atol=1e-5, rtol=0)


# ------------------------------------------------------------------------------------------------ training + CLI
@pytest.fixture(scope="module")
def mnist8(mnist_dir):
    return load_mnist(mnist_dir, train=True, image_size=8, limit=200)


def test_training_learns_the_positional_term_and_resumes_bit_for_bit(tmp_path, mnist8, train_killed_at):
    s = RunSettings(
        config=QMAEConfig(image_size=8, token="positional"),
        epochs=2,
        batch_size=16,
        train_samples=48,
        val_samples=0,
        lr=0.05,
        seed=3,
        checkpoint_every=2,
    )
    data = select_data(mnist8, s)
    full = train(s, tmp_path / "full", data, TrainOptions(progress=False, plot=False))
    tok = full.model.token.detach()
    assert tok.numel() == 16 + 64 and tok[16:].abs().max() > 1e-3  # the per-position term moved from zero
    train_killed_at(s, tmp_path / "cut", data, 5)
    resumed = train(s, tmp_path / "cut", data, TrainOptions(progress=False, resume=True))
    assert torch.equal(resumed.model.token, full.model.token) and torch.equal(resumed.model.theta, full.model.theta)
    assert torch.equal(read_checkpoint(tmp_path / "full" / "checkpoint.pt").token, tok)
    assert load_trained(tmp_path / "full").cfg.token == "positional"


def test_cli_train_and_evaluate_take_the_token_and_refuse_it_for_qae(tmp_path, mnist_dir):
    runner = CliRunner()
    common = ["--image-size", "4", "--train-images", "16", "--val-images", "0", "--batch-size", "8"]
    common += ["--no-progress", "--out", str(tmp_path / "runs"), "--data-dir", str(mnist_dir)]
    res = runner.invoke(main, ["train", "--token", "positional", *common])
    assert res.exit_code == 0, res.output
    assert "20 positional token values" in res.output
    (run,) = (tmp_path / "runs").iterdir()
    assert run.name.endswith("-tpos-s0")
    assert json.loads((run / "config.json").read_text())["settings"]["config"]["token"] == "positional"
    res = runner.invoke(main, ["evaluate", str(run), "--images", "20", "--no-classifier", "--json"])
    assert res.exit_code == 0, res.output
    result = json.loads(res.output)
    assert result["config"]["token"] == "positional" and 0 < result["metrics"]["fidelity"]["mean"] <= 1
    res = runner.invoke(main, ["train", "--token", "shared", "--name", "shared", *common])
    assert res.exit_code == 0, res.output
    assert "token" not in json.loads((tmp_path / "runs" / "shared" / "config.json").read_text())["settings"]["config"]
    res = runner.invoke(main, ["train", "--model", "qae", "--token", "positional", "--name", "bad", *common])
    assert res.exit_code == 2 and "needs --model qmae" in res.output and len(res.output.strip().splitlines()) == 1
    assert not (tmp_path / "runs" / "bad").exists()
