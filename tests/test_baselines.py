"""No-circuit baselines: the fills put the right values in the masked patches and nothing else changes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qmae_qiskit.errors import QMAEError
from qmae_qiskit.evaluate import baselines as bl
from qmae_qiskit.evaluate.scoring import score_images
from qmae_qiskit.model.config import QMAEConfig


@pytest.fixture
def setup():
    cfg = QMAEConfig(image_size=8, patch_height=4, patch_width=2)  # 2 x 4 grid of 4x2 patches
    g = torch.Generator().manual_seed(0)
    train = torch.rand(20, 8, 8, generator=g, dtype=torch.float64)
    images = torch.rand(3, 8, 8, generator=g, dtype=torch.float64)
    patch_idx = torch.tensor([[0, 5], [3, 7], [1, 2]])
    return cfg, train, images, patch_idx


def _patch_slice(p: int) -> tuple[slice, slice]:
    r, c = divmod(p, 4)
    return slice(4 * r, 4 * r + 4), slice(2 * c, 2 * c + 2)


def test_fit_averages_the_mean_image_over_patch_positions(setup):
    cfg, train, _, _ = setup
    stats = bl.fit(train, cfg)
    mean = train.numpy().mean(0)
    expected = np.mean([mean[_patch_slice(p)] for p in range(8)], axis=0).ravel()
    assert np.allclose(stats.mean_image.numpy(), mean)
    assert np.allclose(stats.mean_patch.numpy(), expected)
    assert stats.mean_patch.numel() == cfg.n_token  # the mask token's shape


@pytest.mark.parametrize("name", bl.BASELINES)
def test_fills_change_only_masked_patches(setup, name):
    cfg, train, images, patch_idx = setup
    stats = bl.fit(train, cfg)
    out = bl.fill(name, images, patch_idx, cfg, stats)
    mean = stats.mean_image.numpy()
    for i in range(3):
        expected = images[i].numpy().copy()
        for p in patch_idx[i].tolist():
            sl = _patch_slice(p)
            if name == "masked":
                expected[sl] = 0.0
            elif name == "mean_patch":
                expected[sl] = stats.mean_patch.numpy().reshape(4, 2)
            else:
                expected[sl] = mean[sl]
        assert np.allclose(out[i].numpy(), expected), (name, i)


def test_baseline_fidelity_is_the_embedding_overlap(setup):
    cfg, train, images, patch_idx = setup
    filled = bl.fill("masked", images, patch_idx, cfg, bl.fit(train, cfg))
    scores = score_images(filled, images, torch.zeros(3), classifier=None)
    a, b = filled.reshape(3, -1).numpy(), images.reshape(3, -1).numpy()
    ref = [(x @ y) ** 2 / (x @ x) / (y @ y) for x, y in zip(a, b)]
    assert np.allclose(scores["fidelity"].numpy(), ref)
    assert "accuracy" not in scores


def test_bad_inputs(setup):
    cfg, train, images, patch_idx = setup
    with pytest.raises(QMAEError, match="training images"):
        bl.fit(train[:, :4], cfg)
    with pytest.raises(QMAEError, match="unknown baseline"):
        bl.fill("median", images, patch_idx, cfg, bl.fit(train, cfg))
