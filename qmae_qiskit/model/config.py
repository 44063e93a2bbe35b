"""The model's shape as one validated object, so that a wrong combination fails before any circuit is built."""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer, model_validator

ALLOWED_IMAGE_SIZES = (4, 8, 16, 32)
ANSATZES = ("all-pairs", "brickwork")  # the paper's first; brickwork: nearest-neighbour blocks on a line


class QMAEConfig(BaseModel):
    """Shape of a QMAE / QAE model.

    ``image_size`` L gives ``n = log2(L*L)`` data qubits; ``latent_qubits`` k of them are kept, the other
    ``t = n - k`` are trash. The mask is cut in patches of ``patch_height x patch_width`` pixels; the learnable
    mask token has one value per pixel of a patch (paper eq. 7). Paper default: L=16, n=8, k=7, t=1, 8x8 patch.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    image_size: int = Field(16, description="side L of the square image; a power of two in 4, 8, 16, 32")
    latent_qubits: int | None = Field(None, description="k; defaults to n - 1 (one trash qubit)")
    patch_height: int | None = Field(None, description="H_p; defaults to L/2")
    patch_width: int | None = Field(None, description="W_p; defaults to L/2")
    trash_reset: str = Field("swap", description="'swap' (fresh |0> qubit, the paper's way) or 'reset'")
    layers: int = Field(1, description="ansatz layers: the block layer repeated, each with its own theta")
    ansatz: str = Field("all-pairs", description="'all-pairs' (the paper's) or 'brickwork' (nearest neighbours)")

    @model_validator(mode="before")
    @classmethod
    def _fill_defaults(cls, data: object) -> object:
        if isinstance(data, dict):
            data = dict(data)
            size = data.get("image_size", 16)
            if isinstance(size, int) and size in ALLOWED_IMAGE_SIZES:
                n = int(round(math.log2(size * size)))
                if data.get("latent_qubits") is None:
                    data["latent_qubits"] = n - 1
                for key in ("patch_height", "patch_width"):
                    if data.get(key) is None:
                        data[key] = size // 2
        return data

    @model_validator(mode="after")
    def _check(self) -> QMAEConfig:
        L = self.image_size
        if L not in ALLOWED_IMAGE_SIZES:
            raise ValueError(f"image_size must be one of {ALLOWED_IMAGE_SIZES}, got {L}")
        n = self.n_qubits
        k = self.latent_qubits
        if k is None or not 1 <= k <= n - 1:
            raise ValueError(
                f"latent_qubits must be between 1 and {n - 1} for a {L}x{L} image (n={n}) so that at least one "
                f"qubit is trash, got {k}"
            )
        for name, value in (("patch_height", self.patch_height), ("patch_width", self.patch_width)):
            if value is None or value < 1 or value > L or L % value:
                raise ValueError(f"{name} must divide the image side {L} (1..{L}), got {value}")
        if not isinstance(self.layers, int) or self.layers < 1:
            raise ValueError(f"layers must be a positive whole number (1 = the paper's ansatz), got {self.layers}")
        if self.ansatz not in ANSATZES:
            raise ValueError(
                f"ansatz must be one of {', '.join(ANSATZES)} (all-pairs = the paper's), got {self.ansatz!r}"
            )
        if self.trash_reset not in ("swap", "reset"):
            raise ValueError(f"trash_reset must be 'swap' or 'reset', got {self.trash_reset!r}")
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = handler(self)
        if data.get("layers") == 1:
            del data["layers"]  # the paper's default: records stay as they were before layers existed
        if data.get("ansatz") == ANSATZES[0]:
            del data["ansatz"]  # likewise before the brickwork ansatz existed
        return data

    @property
    def n_qubits(self) -> int:
        """Data qubits n = log2(L^2)."""
        return int(round(math.log2(self.image_size**2)))

    @property
    def latent(self) -> int:
        """k as an int (the validators fill ``latent_qubits``; None never survives validation)."""
        assert self.latent_qubits is not None
        return self.latent_qubits

    @property
    def patch(self) -> tuple[int, int]:
        """(H_p, W_p) as ints (filled by the validators like ``latent``)."""
        assert self.patch_height is not None and self.patch_width is not None
        return self.patch_height, self.patch_width

    @property
    def trash_qubits(self) -> int:
        """Trash qubits t = n - k."""
        return self.n_qubits - self.latent

    @property
    def dim(self) -> int:
        """Amplitudes of the data register, 2^n = L^2."""
        return self.image_size**2

    @property
    def n_pairs(self) -> int:
        """Blocks of one ansatz layer: every pair, n(n-1)/2 (the paper), or the n - 1 bonds of a line (brickwork)."""
        n = self.n_qubits
        return n * (n - 1) // 2 if self.ansatz == "all-pairs" else n - 1

    @property
    def n_theta_layer(self) -> int:
        """Ansatz parameters of one layer, 15 per block: n(n-1)/2 * 15 for all-pairs (paper eq. 3)."""
        return self.n_pairs * 15

    @property
    def n_theta(self) -> int:
        """Ansatz parameters p_a = layers * n(n-1)/2 * 15 (paper eq. 3 for one layer); layer l uses the l-th block."""
        return self.layers * self.n_theta_layer

    @property
    def n_token(self) -> int:
        """Mask-token parameters H_p * W_p."""
        return self.patch[0] * self.patch[1]

    @property
    def n_params_qmae(self) -> int:
        """Total trainable parameters of QMAE p = p_a + H_p W_p (paper eq. 7)."""
        return self.n_theta + self.n_token

    @property
    def n_loader_angles(self) -> int:
        """RY angles of one amplitude loader, 2^n - 1."""
        return self.dim - 1

    @property
    def n_circuit_qubits(self) -> int:
        """Qubits of the SWAP-test training circuit: ancilla + fresh (swap reset only) + data + reference."""
        fresh = self.trash_qubits if self.trash_reset == "swap" else 0
        return 1 + fresh + 2 * self.n_qubits
