"""Adam for the training loop: torch.optim.Adam's update written out, without torch.optim's start-up cost.

``torch.optim.Adam`` imports ``torch._dynamo`` (and with it sympy) on its first use: about as long as importing
torch itself, on every ``train`` command. This class performs torch's single-tensor update (the one torch runs on
CPU tensors: no weight decay, no amsgrad, not maximizing) with the same operations in the same order, so the
parameters are the same to the last bit, and it reads and writes torch's ``state_dict`` layout, so checkpoints
move between the two in both directions. Tests compare it with ``torch.optim.Adam`` step by step.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch


class Adam:
    """``torch.optim.Adam(params, lr, betas, eps)`` for the parameters of a training run (see the module doc)."""

    def __init__(self, params: Iterable[torch.Tensor], lr: float, betas: tuple[float, float] = (0.9, 0.999), eps=1e-8):
        self.params = list(params)
        self.param_groups: list[dict[str, Any]] = [
            {
                "lr": lr,
                "betas": (float(betas[0]), float(betas[1])),
                "eps": eps,
                "weight_decay": 0,
                "amsgrad": False,
                "maximize": False,
                "foreach": None,
                "capturable": False,
                "differentiable": False,
                "fused": None,
                "decoupled_weight_decay": False,
                "params": self.params,
            }
        ]
        self.state: dict[int, dict[str, torch.Tensor]] = {}

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if p.grad is not None:
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.detach_().zero_()

    @torch.no_grad()
    def step(self) -> None:
        group = self.param_groups[0]
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        for i, param in enumerate(self.params):
            grad = param.grad
            if grad is None:
                continue
            state = self.state.get(i)
            if state is None:
                state = self.state[i] = {
                    "step": torch.tensor(0.0, dtype=torch.get_default_dtype()),
                    "exp_avg": torch.zeros_like(param, memory_format=torch.preserve_format),
                    "exp_avg_sq": torch.zeros_like(param, memory_format=torch.preserve_format),
                }
            exp_avg, exp_avg_sq, step_t = state["exp_avg"], state["exp_avg_sq"], state["step"]
            step_t += 1
            exp_avg.lerp_(grad, 1 - beta1)
            exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            step = step_t.item()
            bias_correction1 = 1 - beta1**step
            bias_correction2 = 1 - beta2**step
            step_size = lr / bias_correction1
            bias_correction2_sqrt = bias_correction2**0.5
            denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
            param.addcdiv_(exp_avg, denom, value=-step_size)

    def state_dict(self) -> dict[str, Any]:
        """torch.optim.Adam's layout: {"state": {index: {...}}, "param_groups": [{..., "params": [indices]}]}."""
        group = {k: v for k, v in self.param_groups[0].items() if k != "params"}
        group["params"] = list(range(len(self.params)))
        return {"state": {i: dict(s) for i, s in self.state.items()}, "param_groups": [group]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state written by this class or by ``torch.optim.Adam`` for the same parameters."""
        groups = state_dict["param_groups"]
        if len(groups) != 1 or len(groups[0]["params"]) != len(self.params):
            raise ValueError("the optimizer state does not match the parameters (number of groups or parameters)")
        saved = groups[0]
        for key in ("amsgrad", "maximize", "weight_decay"):
            if saved.get(key, self.param_groups[0][key]) != self.param_groups[0][key]:
                raise ValueError(f"the optimizer state has {key}={saved[key]!r}, which this Adam does not do")
        state: dict[int, dict[str, torch.Tensor]] = {}
        for pos, index in enumerate(saved["params"]):
            s = state_dict["state"].get(index)
            if s is None:
                continue
            p = self.params[pos]
            if s["exp_avg"].shape != p.shape or s["exp_avg_sq"].shape != p.shape:
                raise ValueError(f"the optimizer state of parameter {pos} has the wrong shape")
            state[pos] = {
                "step": s["step"].detach().clone(),
                "exp_avg": s["exp_avg"].detach().to(p.dtype).clone(),
                "exp_avg_sq": s["exp_avg_sq"].detach().to(p.dtype).clone(),
            }
        self.state = state
        group = {k: v for k, v in saved.items() if k != "params"}
        group["betas"] = tuple(group["betas"])
        self.param_groups = [{**self.param_groups[0], **group, "params": self.params}]
