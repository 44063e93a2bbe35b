"""QMAE and QAE as torch modules with one interface, independent of where the fidelity is computed.

Both hold the ansatz parameters theta; QMAE also holds the learnable mask token (H_p * W_p values, paper eq. 7)
that replaces every masked patch before embedding, QAE sets masked pixels to zero. ``forward(images, patch_idx)``
returns the SWAP-test fidelity <Z> per sample, computed by a *fidelity backend*: any callable
``backend(theta, x_masked, x_clean) -> (B,)`` (the exact simulator by default, an EstimatorQNN on Aer from
:mod:`qmae_qiskit.train.qnn`). Gradients reach the token through the masked amplitudes.
"""

from __future__ import annotations

import math
from typing import Protocol

import torch
from torch import nn

from qmae_qiskit.model.config import QMAEConfig
from qmae_qiskit.model.masking import insert_token
from qmae_qiskit.simulate import exact


class FidelityBackend(Protocol):
    def __call__(self, theta: torch.Tensor, x_masked: torch.Tensor, x_clean: torch.Tensor) -> torch.Tensor: ...


class ExactFidelity:
    """The exact simulator (:func:`qmae_qiskit.simulate.exact.fidelity`): the circuit's <Z>, differentiable.

    ``precision='float32'`` runs the simulation in complex64 (about twice as fast, ~1e-6 accurate); parameters
    and their gradients stay float64 either way.
    """

    def __init__(self, cfg: QMAEConfig, precision: str = "float64", device: str | torch.device = "cpu"):
        if precision not in ("float64", "float32"):
            raise ValueError(f"precision must be 'float64' or 'float32', got {precision!r}")
        self.cfg = cfg
        self.dtype = torch.float64 if precision == "float64" else torch.float32
        self.device = torch.device(device)  # where the kernel runs; parameters and fidelities stay on the CPU

    def __call__(self, theta: torch.Tensor, x_masked: torch.Tensor, x_clean: torch.Tensor) -> torch.Tensor:
        d, dev = self.dtype, self.device
        fid = exact.fidelity(theta.to(dev, d), x_masked.to(dev, d), x_clean.to(dev, d), self.cfg)
        return fid.to("cpu", torch.float64)

    def masked(
        self, theta: torch.Tensor, images: torch.Tensor, patch_idx: torch.Tensor, token: torch.Tensor
    ) -> torch.Tensor:
        """The same fidelities for QMAE's masked inputs, with the token's gradient computed per patch position
        (:func:`qmae_qiskit.simulate.exact.masked_fidelity`) rather than per masked pixel."""
        d, dev = self.dtype, self.device
        fid = exact.masked_fidelity(theta.to(dev, d), images.to(dev, d), patch_idx.to(dev), token.to(dev), self.cfg)
        return fid.to("cpu", torch.float64)


class MaskedAutoencoder(nn.Module):
    """Common QMAE / QAE module: ``theta`` always, ``token`` only for QMAE (None for QAE)."""

    kind = "base"

    def __init__(
        self, cfg: QMAEConfig, theta: torch.Tensor, token: torch.Tensor | None, backend: FidelityBackend | None = None
    ):
        super().__init__()
        if theta.numel() != cfg.n_theta:
            raise ValueError(f"theta must have {cfg.n_theta} values for this config, got {theta.numel()}")
        self.cfg = cfg
        self.theta = nn.Parameter(theta.detach().to(torch.float64).reshape(-1).clone())
        if token is None:
            self.register_parameter("token", None)
        else:
            if token.numel() != cfg.n_token:
                raise ValueError(f"the mask token must have {cfg.n_token} values (H_p*W_p), got {token.numel()}")
            self.token = nn.Parameter(token.detach().to(torch.float64).reshape(-1).clone())
        self.backend: FidelityBackend = backend if backend is not None else ExactFidelity(cfg)

    def set_backend(self, backend: FidelityBackend) -> MaskedAutoencoder:
        self.backend = backend
        return self

    def masked_inputs(self, images: torch.Tensor, patch_idx: torch.Tensor) -> torch.Tensor:
        """(B, L*L) encoder inputs: masked patches replaced by the token (QMAE) or zeros (QAE)."""
        images = images.to(torch.float64)
        return insert_token(images, patch_idx, self.cfg, self.token).reshape(images.shape[0], -1)

    def forward(self, images: torch.Tensor, patch_idx: torch.Tensor) -> torch.Tensor:
        """Fidelity <Z> (B,) between the decoded masked image and the clean image.

        A backend with a ``masked(theta, images, patch_idx, token)`` method (the exact one) gets QMAE's images and
        mask directly, so that it can skip the dense gradient of the masked pixels."""
        images = images.to(torch.float64)
        masked = getattr(self.backend, "masked", None)
        if self.token is not None and masked is not None:
            return masked(self.theta, images, patch_idx, self.token)
        clean = images.reshape(images.shape[0], -1)
        return self.backend(self.theta, self.masked_inputs(images, patch_idx), clean)

    def loss(self, images: torch.Tensor, patch_idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean of 1 - <Z> (eq. 9), the per-sample fidelities)."""
        fid = self.forward(images, patch_idx)
        return (1.0 - fid).mean(), fid

    def reconstruct(self, images: torch.Tensor, patch_idx: torch.Tensor) -> torch.Tensor:
        """Exact decoded probabilities (B, L*L) of the masked images (see `exact.reconstruct`)."""
        return exact.reconstruct(self.theta, self.masked_inputs(images, patch_idx), self.cfg)


class QMAE(MaskedAutoencoder):
    """Quantum masked autoencoder: theta plus a learnable mask token."""

    kind = "qmae"

    def __init__(
        self, cfg: QMAEConfig, theta: torch.Tensor, token: torch.Tensor, backend: FidelityBackend | None = None
    ):
        if token is None:
            raise ValueError("QMAE needs a mask token")
        super().__init__(cfg, theta, token, backend)


class QAE(MaskedAutoencoder):
    """Quantum autoencoder baseline: the same circuit and theta, masked pixels set to zero."""

    kind = "qae"

    def __init__(
        self, cfg: QMAEConfig, theta: torch.Tensor, token: None = None, backend: FidelityBackend | None = None
    ):
        if token is not None:
            raise ValueError("QAE has no mask token")
        super().__init__(cfg, theta, None, backend)


MODEL_CLASSES: dict[str, type[MaskedAutoencoder]] = {"qmae": QMAE, "qae": QAE}


def build_model(
    kind: str,
    cfg: QMAEConfig,
    theta: torch.Tensor,
    token: torch.Tensor | None = None,
    backend: FidelityBackend | None = None,
) -> MaskedAutoencoder:
    """QMAE or QAE by name."""
    if kind not in MODEL_CLASSES:
        raise ValueError(f"unknown model {kind!r}; use one of {', '.join(MODEL_CLASSES)}")
    return MODEL_CLASSES[kind](cfg, theta, token if kind == "qmae" else None, backend)


def init_theta(cfg: QMAEConfig, how: str, seed: int, scale: float = 0.1) -> torch.Tensor:
    """Initial ansatz angles.

    'uniform': U[0, 2pi) per angle, a generic U with no built-in structure (the default: every block starts
    entangling, and the loss is not stuck at the near-identity value where U only permutes little weight into
    the trash qubit). 'normal': N(0, scale^2), U close to the identity, for studies of small-angle starts.
    """
    g = torch.Generator().manual_seed(int(seed))
    if how == "uniform":
        return torch.rand(cfg.n_theta, generator=g, dtype=torch.float64) * (2 * math.pi)
    if how == "normal":
        return torch.randn(cfg.n_theta, generator=g, dtype=torch.float64) * scale
    raise ValueError(f"unknown theta init {how!r}; use 'uniform' or 'normal'")


def init_token(
    cfg: QMAEConfig, how: str, seed: int, train_images: torch.Tensor | None = None, value: float = 0.5
) -> torch.Tensor:
    """Initial mask token, non-zero so that every loader angle has a gradient.

    'mean': the mean training image over every patch position, averaged (a plausible grey patch; falls back to
    the mean pixel if that is all zero), 'uniform': U[0, 1) per pixel, 'constant': ``value`` everywhere.
    """
    n = cfg.n_token
    if how == "constant":
        if value == 0:
            raise ValueError("a constant mask token of 0 has no gradient through the loader; pick a non-zero value")
        return torch.full((n,), float(value), dtype=torch.float64)
    if how == "uniform":
        g = torch.Generator().manual_seed(int(seed) + 1)
        return torch.rand(n, generator=g, dtype=torch.float64) * 0.9 + 0.1
    if how == "mean":
        if train_images is None or len(train_images) == 0:
            raise ValueError("token init 'mean' needs training images")
        hp, wp = int(cfg.patch_height), int(cfg.patch_width)  # type: ignore[arg-type]
        L = cfg.image_size
        mean = train_images.to(torch.float64).mean(0).reshape(L // hp, hp, L // wp, wp)
        patch = mean.mean(dim=(0, 2)).reshape(-1)
        floor = float(train_images.mean()) * 0.1 + 1e-3
        return patch.clamp(min=floor)
    raise ValueError(f"unknown token init {how!r}; use 'mean', 'uniform' or 'constant'")
