"""Where torch computes (``--device auto|cpu|cuda``) and how many threads a deterministic computation may use.

A device is chosen once per command and passed down; ``cuda`` without a GPU is a user error (one line, exit 2,
raised before anything is written). CPU results never depend on this module: ``cpu`` and ``auto`` on a machine
without a GPU run exactly the code that ran before the option existed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from qmae_qiskit.errors import QMAEError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """``auto`` -> cuda when a GPU is visible, else cpu; ``cuda`` without a GPU -> QMAEError with the fix."""
    if isinstance(name, torch.device):
        name = name.type
    name = (name or "auto").lower()
    if name not in DEVICES and not name.startswith("cuda:"):
        raise QMAEError(f"unknown device {name!r}; use one of {', '.join(DEVICES)}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise QMAEError(
            f"--device {name}: no CUDA GPU is visible to torch (torch {torch.__version__}, "
            f"CUDA build {torch.version.cuda or 'none'}); use --device cpu, or install a CUDA build of torch"
        )
    return torch.device(name)


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads, restoring the caller's count afterwards.

    Reductions (convolution weight gradients, BatchNorm statistics) are summed in an order that depends on the
    thread count, so a training that must give the same weights everywhere pins its own count instead of
    inheriting the caller's (a CLI process, a ``reproduce`` run or a one-thread sweep worker).
    """
    old = torch.get_num_threads()
    if old != n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != old:
            torch.set_num_threads(old)


@contextmanager
def deterministic_cuda(device: torch.device) -> Iterator[None]:
    """cuDNN's deterministic kernels while the block runs on ``device`` (nothing changes on CPU)."""
    if device.type != "cuda":
        yield
        return
    old = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = old
