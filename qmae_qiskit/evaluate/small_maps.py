"""Convolutions whose output is a single pixel, computed as one matrix product (classifier recipe v3).

On 16x16 MNIST the ResNet18 judge reaches its last stage with 2x2 and then 1x1 feature maps. A 3x3 convolution
with padding 1 on a 1x1 map uses only the kernel's centre (the other eight taps meet zero padding), and the stage's
first, stride-2 convolution on a 2x2 map uses only the kernel's lower-right 2x2 window. oneDNN still runs the full
3x3 convolution and its backward pass, which made the last stage 45 % of a training step on one thread. Here those
convolutions are one 1x1 convolution of the flattened input with the flattened window of the kernel (a matrix
product that oneDNN, unlike BLAS, splits between threads without splitting a sum, so predictions stay independent
of the thread count): the same function and the same gradients (equal to float64 rounding; tested against
``conv2d``), the same parameters and state-dict keys, a different summation order in float32. The unused taps get
a zero gradient either way, so Adam never moves them.
"""

from __future__ import annotations

import torch
from torch import nn


class WindowConv2d(nn.Conv2d):
    """``nn.Conv2d`` that computes a single-pixel output as a matrix product over the kernel window the input
    covers, and any other output as ``nn.Conv2d`` does."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        window = self._window(x.shape[-2], x.shape[-1])
        if window is None:
            return super().forward(x)
        (top, left), (h, w) = window, x.shape[-2:]
        weight = self.weight[:, :, top : top + h, left : left + w].reshape(self.out_channels, -1, 1, 1)
        return nn.functional.conv2d(x.reshape(x.shape[0], -1, 1, 1), weight, self.bias)

    def _window(self, h: int, w: int) -> tuple[int, int] | None:
        """The kernel offset (top, left) the whole input falls in when the output is one pixel, else None."""
        if self.groups != 1 or self.dilation != (1, 1) or not isinstance(self.padding, tuple):
            return None
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        one_pixel = (h + 2 * ph - kh) // sh == 0 and (w + 2 * pw - kw) // sw == 0
        inside = ph + h <= kh and pw + w <= kw  # every input pixel meets a kernel tap (none is cut off)
        return (ph, pw) if one_pixel and inside else None


def use_window_convs(model: nn.Module) -> nn.Module:
    """Make every plain ``nn.Conv2d`` of ``model`` a :class:`WindowConv2d` in place (same parameters, same
    state-dict keys); returns ``model``."""
    for module in model.modules():
        if type(module) is nn.Conv2d:
            module.__class__ = WindowConv2d
    return model
