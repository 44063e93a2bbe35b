"""The training loop's Adam: torch.optim.Adam's parameters to the last bit, and its state_dict both ways."""

from __future__ import annotations

import pytest
import torch

from qmae_qiskit.train.adam import Adam


def _params(seed: int) -> list[torch.nn.Parameter]:
    g = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.rand(n, dtype=torch.float64, generator=g)) for n in (420, 64)]


def _grads(step: int, params) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(1000 + step)
    return [torch.randn(p.shape, dtype=torch.float64, generator=g) * 10 ** (step % 5 - 3) for p in params]


def _run(opt, params, steps: range) -> None:
    for s in steps:
        opt.zero_grad(set_to_none=True)
        for p, g in zip(params, _grads(s, params)):
            p.grad = g.clone()
        opt.step()


@pytest.mark.parametrize("lr,betas", [(0.01, (0.9, 0.999)), (0.003, (0.5, 0.9))])
def test_same_parameters_as_torch_adam_bit_for_bit(lr, betas):
    ours, theirs = _params(0), _params(0)
    a, b = Adam(ours, lr=lr, betas=betas), torch.optim.Adam(theirs, lr=lr, betas=betas)
    for s in range(60):
        _run(a, ours, range(s, s + 1))
        _run(b, theirs, range(s, s + 1))
        assert all(torch.equal(x, y) for x, y in zip(ours, theirs)), f"step {s + 1}"
    assert not torch.equal(ours[0], _params(0)[0])  # they moved


@pytest.mark.parametrize("direction", ["torch->ours", "ours->torch"])
def test_state_dict_moves_between_the_two(direction):
    first, reference = _params(3), _params(3)
    ref = torch.optim.Adam(reference, lr=0.02)
    _run(ref, reference, range(0, 25))
    src_cls, dst_cls = (torch.optim.Adam, Adam) if direction == "torch->ours" else (Adam, torch.optim.Adam)
    src = src_cls(first, lr=0.02)
    _run(src, first, range(0, 10))
    saved = src.state_dict()
    second = [torch.nn.Parameter(p.detach().clone()) for p in first]
    dst = dst_cls(second, lr=0.02)
    dst.load_state_dict(saved)
    _run(dst, second, range(10, 25))
    assert all(torch.equal(x, y) for x, y in zip(second, reference))


def test_a_state_for_other_parameters_is_refused():
    opt = Adam(_params(0), lr=0.01)
    other = torch.optim.Adam([torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))], lr=0.01)
    with pytest.raises(ValueError, match="does not match"):
        opt.load_state_dict(other.state_dict())
