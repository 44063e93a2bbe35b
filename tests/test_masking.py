"""Vectorised mask sampling: the same masks as numpy's per-image SeedSequence generators, for every key."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qmae_qiskit.model import keyed_sampling as ks
from qmae_qiskit.model.config import QMAEConfig
from qmae_qiskit.model.masking import eval_masks, sample_mask_indices, sample_mask_indices_reference


@pytest.mark.parametrize("population,size", [(2, 1), (4, 1), (4, 2), (4, 3), (8, 1), (16, 8), (64, 20), (1024, 900)])
def test_keyed_choice_equals_numpy_generators(population, size):
    rs = np.random.default_rng(population * 1000 + size)
    seed, epoch = int(rs.integers(0, 2**31)), int(rs.integers(0, 3_000_000))
    keys = rs.integers(0, 2**32, size=400)
    got = ks.keyed_choice((seed, epoch), keys, population, size)
    want = np.stack([ks.reference_choice((seed, epoch), k, population, size) for k in keys.tolist()])
    assert got.shape == (400, size) and np.array_equal(got, want)


@pytest.mark.parametrize("prefix", [(2**40 + 5, 3), (0, 2**33), (5,), (1, 2, 3), (2**40 + 5, 2**33 + 1, 7)])
def test_multi_word_and_other_prefixes(prefix):
    keys = np.array([0, 1, 77, 2**32 - 1, 2**32, 2**40 + 9])  # keys over 32 bits take numpy's own path
    got = ks.keyed_choice(prefix, keys, 16, 5)
    want = np.stack([ks.reference_choice(prefix, k, 16, 5) for k in keys.tolist()])
    assert np.array_equal(got, want)


def test_rows_that_leave_the_vectorised_path_are_recomputed(monkeypatch):
    keys = np.arange(50)
    real = ks._floyd

    def reject_some(entropy, n, population, size):  # stands for Lemire rejections on rows 3 and 17
        out, rejected = real(entropy, n, population, size)
        out[[3, 17]] = -1
        rejected[[3, 17]] = True
        return out, rejected

    monkeypatch.setattr(ks, "_floyd", reject_some)
    got = ks.keyed_choice((1, 2), keys, 8, 3)
    want = np.stack([ks.reference_choice((1, 2), k, 8, 3) for k in keys.tolist()])
    assert np.array_equal(got, want)


def test_bad_keys_and_sizes_are_clear_errors():
    with pytest.raises(ValueError, match="non-negative"):
        ks.keyed_choice((0, 1), [3, -1], 4, 1)
    with pytest.raises(ValueError, match="non-negative"):
        ks.keyed_choice((-2, 1), [3], 4, 1)
    with pytest.raises(ValueError, match="cannot choose"):
        ks.keyed_choice((0, 1), [3], 4, 5)
    assert ks.keyed_choice((0, 1), [], 4, 1).shape == (0, 1)


@pytest.mark.parametrize(
    "ratio,cfg", [(0.25, QMAEConfig()), (0.5, QMAEConfig()), (0.125, QMAEConfig(patch_height=4, patch_width=8))]
)
def test_training_and_evaluation_masks_are_unchanged(ratio, cfg):
    idx = torch.arange(0, 10_000, 37)
    for epoch in (0, 1, 39):
        assert torch.equal(
            sample_mask_indices(cfg, ratio, idx, 0, epoch), sample_mask_indices_reference(cfg, ratio, idx, 0, epoch)
        )
    ref = sample_mask_indices_reference(cfg, ratio, idx, 3, 2_000_000)
    assert torch.equal(eval_masks(cfg, ratio, idx, 3), ref)
    perm = torch.randperm(len(idx), generator=torch.Generator().manual_seed(0))
    assert torch.equal(
        sample_mask_indices(cfg, ratio, idx[perm], 0, 5), sample_mask_indices(cfg, ratio, idx, 0, 5)[perm]
    )
