"""The RY-tree loader must reproduce the normalized image exactly, zeros and signs included."""

import numpy as np
import pytest
import torch
from qiskit.quantum_info import Statevector

from qmae_qiskit.model.loader import loader_angles, loader_circuit


def _state(n: int, x: torch.Tensor) -> np.ndarray:
    return Statevector(loader_circuit(n).assign_parameters(loader_angles(x).numpy())).data


def _cases(n: int):
    d = 2**n
    rand = torch.rand(d, dtype=torch.float64)
    zeros = rand.clone()
    zeros[: d // 2] = 0  # a whole half empty: the top angle sees a zero subtree
    if d > 2:
        zeros[-1] = 0
    onehots = [torch.nn.functional.one_hot(torch.tensor(i), d).double() for i in (0, d // 3, d - 1)]
    sparse = torch.zeros(d, dtype=torch.float64)
    sparse[[1, d - 2]] = torch.tensor([0.3, 0.7], dtype=torch.float64)
    signed = torch.randn(d, dtype=torch.float64)
    return [rand, zeros, sparse, signed, *onehots]


@pytest.mark.parametrize("n", [1, 2, 3, 4, 6, 8])
def test_loader_statevector_is_normalized_image(n):
    for x in _cases(n):
        np.testing.assert_allclose(_state(n, x), (x / x.norm()).numpy(), atol=1e-12)


def test_loader_gate_counts():
    for n in (2, 4, 8):
        ops = loader_circuit(n).count_ops()
        assert ops["ry"] == 2**n - 1
        assert ops["cx"] == 2**n - 2
        assert loader_circuit(n).num_parameters == 2**n - 1


def test_loader_angles_batched_match_single():
    x = torch.rand(5, 64, dtype=torch.float64)
    batched = loader_angles(x)
    for i in range(5):
        torch.testing.assert_close(batched[i], loader_angles(x[i]))


def test_loader_gradient_reaches_pixels():
    """The composite pixels -> angles -> state is x/|x|: its Jacobian equals the normalization's."""
    n = 3
    x = torch.rand(2**n, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2**n, dtype=torch.float64)

    def through_loader(v):
        ang = loader_angles(v)
        # rebuild the state in torch from the tree angles to differentiate the whole chain
        from qmae_qiskit.model.loader import tree_angles

        amps = torch.ones(1, dtype=torch.float64)
        for alpha in tree_angles(v):
            c, s = torch.cos(alpha / 2), torch.sin(alpha / 2)
            amps = torch.stack([amps * c, amps * s], -1).reshape(-1)
        assert ang.shape[-1] == 2**n - 1
        return (amps * w).sum()

    g_loader = torch.autograd.grad(through_loader(x), x)[0]
    g_norm = torch.autograd.grad(((x / x.norm()) * w).sum(), x)[0]
    torch.testing.assert_close(g_loader, g_norm)
