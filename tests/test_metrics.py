"""Metrics: pixel scaling, counts decoding, cosine / SSIM cross-checked against numpy and scikit-image."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from qmae_qiskit.errors import QMAEError
from qmae_qiskit.evaluate import metrics


def test_to_pixels_peak_is_one_scale_free_and_zero_safe():
    v = torch.tensor([[0.0, 2.0, 4.0, 1.0], [0.0, 0.0, 0.0, 0.0], [3.0, -1.0, 0.0, 1.5]])
    out = metrics.to_pixels(v)
    assert torch.allclose(out[0], torch.tensor([0.0, 0.5, 1.0, 0.25]))
    assert torch.equal(out[1], torch.zeros(4))
    assert torch.allclose(out[2], torch.tensor([1.0, 0.0, 0.0, 0.5]))  # negatives clipped
    assert torch.allclose(metrics.to_pixels(7.3 * v[:1]), out[:1])


def test_probabilities_to_image_inverts_the_amplitude_embedding():
    g = torch.Generator().manual_seed(0)
    img = torch.rand(3, 4, 4, generator=g, dtype=torch.float64)
    flat = img.reshape(3, -1)
    probs = flat**2 / (flat**2).sum(1, keepdim=True)  # what a perfect circuit measures
    out = metrics.probabilities_to_image(probs, 4)
    expected = img / img.amax(dim=(1, 2), keepdim=True)
    assert out.shape == (3, 4, 4)
    assert torch.allclose(out, expected)
    with pytest.raises(QMAEError, match="16 probabilities"):
        metrics.probabilities_to_image(probs[:, :8], 4)


def test_counts_keys_are_pixel_indices():
    counts = {"0000": 1, "0011": 2, "1 000": 1, "0x5": 4}  # spaced bitstring and hex both accepted
    p = metrics.counts_to_probabilities(counts, 4)
    assert math.isclose(float(p.sum()), 1.0)
    assert p[0] == 1 / 8 and p[3] == 2 / 8 and p[8] == 1 / 8 and p[5] == 4 / 8
    img = metrics.counts_to_image({"0011": 4, "0001": 1}, 4)
    assert img[0, 3] == 1.0 and img[0, 1] == pytest.approx(0.5)  # sqrt(1/4) / sqrt(1) ; row 0, cols 1 and 3
    with pytest.raises(QMAEError, match="does not fit"):
        metrics.counts_to_probabilities({"10000": 1}, 4)
    with pytest.raises(QMAEError, match="empty"):
        metrics.counts_to_probabilities({}, 4)


def test_swap_test_fidelity_from_ancilla_counts():
    assert metrics.swap_test_fidelity({"0": 75, "1": 25}) == pytest.approx(0.5)
    assert metrics.swap_test_fidelity({"0": 10}) == 1.0


def test_cosine_matches_numpy_and_handles_zero():
    rng = np.random.default_rng(1)
    a, b = rng.random((5, 4, 4)), rng.random((5, 4, 4))
    ref = [float(x.ravel() @ y.ravel() / np.linalg.norm(x) / np.linalg.norm(y)) for x, y in zip(a, b)]
    out = metrics.cosine(torch.from_numpy(a), torch.from_numpy(b))
    assert np.allclose(out.numpy(), ref)
    assert float(metrics.cosine(torch.zeros(1, 4), torch.ones(1, 4))[0]) == 0.0
    assert np.allclose(metrics.pure_state_fidelity(torch.from_numpy(a), torch.from_numpy(b)).numpy(), np.square(ref))


def test_ssim_equals_scikit_image_per_image():
    rng = np.random.default_rng(2)
    clean = rng.random((6, 16, 16))
    noisy = np.clip(clean + 0.3 * rng.standard_normal(clean.shape), 0, 1)
    ours = metrics.ssim(torch.from_numpy(noisy), torch.from_numpy(clean), data_range=1.0).numpy()
    ref = [structural_similarity(x, y, data_range=1.0) for x, y in zip(noisy, clean)]
    assert np.allclose(ours, ref, atol=1e-12)
    assert np.allclose(metrics.ssim(torch.from_numpy(clean), torch.from_numpy(clean)).numpy(), 1.0)


def test_ssim_of_two_flat_images_is_the_luminance_term():
    # constant images: every variance is 0, so SSIM = (2 a b + C1) / (a^2 + b^2 + C1) with C1 = (0.01 R)^2
    a, b, R = 0.2, 0.7, 1.0
    c1 = (0.01 * R) ** 2
    expected = (2 * a * b + c1) / (a * a + b * b + c1)
    out = metrics.ssim(
        torch.full((1, 8, 8), a, dtype=torch.float64), torch.full((1, 8, 8), b, dtype=torch.float64), data_range=R
    )
    assert float(out[0]) == pytest.approx(expected, rel=1e-12)


def test_ssim_small_images_use_the_largest_odd_window():
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(4)
    for side, win in ((4, 3), (5, 5), (6, 5)):
        a, b = rng.random((3, side, side)), rng.random((3, side, side))
        ours = metrics.ssim(torch.from_numpy(a), torch.from_numpy(b)).numpy()
        ref = [structural_similarity(a[i], b[i], data_range=1.0, win_size=win) for i in range(3)]
        np.testing.assert_allclose(ours, ref, atol=1e-12)


def test_ssim_rejects_missing_range_and_tiny_images():
    x = torch.rand(1, 16, 16)
    with pytest.raises(QMAEError, match="data_range"):
        metrics.ssim(x, x, data_range=None)  # type: ignore[arg-type]
    with pytest.raises(QMAEError, match="at least"):
        metrics.ssim(torch.rand(1, 2, 2), torch.rand(1, 2, 2))
    with pytest.raises(QMAEError, match="same shape"):
        metrics.ssim(x, torch.rand(1, 8, 8))


def test_summarize_matches_numpy():
    v = np.array([0.1, 0.4, 0.4, 0.9])
    s = metrics.summarize(torch.from_numpy(v))
    assert s["mean"] == pytest.approx(v.mean()) and s["std"] == pytest.approx(v.std(ddof=1))
    assert s["sem"] == pytest.approx(v.std(ddof=1) / 2) and s["n"] == 4


def test_image_scores_compare_at_the_same_scale():
    g = torch.Generator().manual_seed(3)
    clean = torch.rand(4, 16, 16, generator=g, dtype=torch.float64)
    scores = metrics.image_scores(5.0 * clean, clean)  # a perfect reconstruction at another scale
    one = torch.ones(4, dtype=torch.float64)
    assert torch.allclose(scores["cs"], one) and torch.allclose(scores["ssim"], one)
