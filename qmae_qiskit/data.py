"""MNIST through torchvision, resized to L x L, as non-negative amplitudes; seeded train/validation split."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from qmae_qiskit.errors import QMAEError

DEFAULT_DATA_DIR = Path("data")
DATA_ENV = "QMAE_DATA_DIR"
RAW_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


@dataclass
class ImageSet:
    """Images (N, L, L) float64 in [0, 1], labels (N,), and the source indices (N,) used to key masks."""

    images: torch.Tensor
    labels: torch.Tensor
    indices: torch.Tensor

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def subset(self, rows: torch.Tensor | slice) -> ImageSet:
        return ImageSet(self.images[rows], self.labels[rows], self.indices[rows])


def load_mnist(
    data_dir: str | Path | None, train: bool, image_size: int = 16, download: bool = False, limit: int | None = None
) -> ImageSet:
    """MNIST ``train`` or test split at ``image_size`` (bilinear, antialiased), pixels scaled to [0, 1].

    ``data_dir`` must hold ``MNIST/raw`` in torchvision's layout unless ``download`` is set. All-zero images
    (none in MNIST, possible after resizing other data) are dropped since they cannot be amplitude-embedded.
    The raw IDX files are read directly (importing torchvision costs seconds of start-up); torchvision is used
    to download, or if the files are not there uncompressed.
    """

    root = resolve_data_dir(data_dir, download)
    if not download and not (root / "MNIST" / "raw").is_dir():
        raise QMAEError(
            f"no MNIST data in {root} (expected {root / 'MNIST' / 'raw'}); pass --data-dir with a folder "
            f"holding torchvision's MNIST layout, or --download when online"
        )
    prefix = "train" if train else "t10k"
    raw_dir = root / "MNIST" / "raw"
    images_file, labels_file = raw_dir / f"{prefix}-images-idx3-ubyte", raw_dir / f"{prefix}-labels-idx1-ubyte"
    if images_file.is_file() and labels_file.is_file():
        raw, labels = read_idx(images_file, 3), read_idx(labels_file, 1).long()
        if raw.shape[0] != labels.shape[0]:
            raise QMAEError(f"{images_file} and {labels_file} hold different numbers of items; download them again")
    else:
        from torchvision.datasets import MNIST  # lazy: torchvision adds ~3 s; only a download needs it

        try:
            ds = MNIST(root=str(root), train=train, download=download)
        except RuntimeError as exc:
            raise QMAEError(f"cannot read MNIST from {root}: {exc}; pass --data-dir or --download") from exc
        raw, labels = ds.data, ds.targets.clone()
    if limit is not None:
        raw, labels = raw[:limit], labels[:limit]
    x = raw.to(torch.float64).unsqueeze(1) / 255.0
    if image_size != x.shape[-1]:
        x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", antialias=True, align_corners=False)
    x = x.clamp_(min=0.0).squeeze(1)
    keep = x.flatten(1).sum(1) > 0
    idx = torch.arange(raw.shape[0])
    return ImageSet(x[keep], labels[keep], idx[keep])


def user_data_dir() -> Path:
    """Where MNIST is downloaded when no folder is given: ``$QMAE_DATA_DIR``, else ``~/.cache/qmae-qiskit``."""
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "qmae-qiskit"


def has_mnist(root: str | Path) -> bool:
    """Whether ``root`` holds the four uncompressed MNIST files in torchvision's layout."""
    raw = Path(root) / "MNIST" / "raw"
    return all((raw / name).is_file() for name in RAW_FILES)


def resolve_data_dir(data_dir: str | Path | None, download: bool = False) -> Path:
    """The folder MNIST is read from, so that a first run needs no flags.

    A folder given (``--data-dir``) is used as it is (downloaded into only with ``download``), unless it is the
    user cache itself. Without one: ``$QMAE_DATA_DIR`` if set, else ``./data`` if it holds MNIST (the earlier
    default), else ``~/.cache/qmae-qiskit``; MNIST is downloaded once into the user cache if it is not there.
    """
    cache = user_data_dir()
    if data_dir is not None and Path(data_dir).expanduser().absolute() != cache.absolute():
        root = Path(data_dir)
        if download and not has_mnist(root):
            download_mnist(root)
        return root
    if data_dir is None and DATA_ENV not in os.environ and has_mnist(DEFAULT_DATA_DIR):
        return DEFAULT_DATA_DIR
    if not has_mnist(cache):
        download_mnist(cache)
    return cache


def download_mnist(root: str | Path) -> Path:
    """Download MNIST into ``root/MNIST/raw`` with a progress bar; offline, one line and nothing left behind.

    torchvision fetches and checks the archives in a temporary folder inside ``root``; only the four
    uncompressed files are moved into place, so an interrupted download never looks like data.
    """

    from torchvision.datasets import MNIST  # lazy: torchvision adds ~3 s; only a download needs it

    root = Path(root)
    created = not root.exists()
    print(f"MNIST not found: downloading it once (about 11 MB) into {root}", file=sys.stderr)
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".mnist-download-", dir=root))
    except OSError as exc:
        raise QMAEError(f"cannot create {root} to download MNIST into ({exc}); pass --data-dir") from exc
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # torchvision prints a line per file and per mirror
            MNIST(root=str(tmp), train=False, download=True)
        raw = root / "MNIST" / "raw"
        raw.mkdir(parents=True, exist_ok=True)
        for name in RAW_FILES:
            os.replace(tmp / "MNIST" / "raw" / name, raw / name)
    except (RuntimeError, OSError) as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise QMAEError(
            f"no MNIST data found and downloading it into {root} failed ({reason}); offline, pass --data-dir "
            f"(or set {DATA_ENV}) with a folder holding torchvision's MNIST layout"
        ) from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if created and not any(root.iterdir()):
            root.rmdir()
    return root


def read_idx(path: str | Path, ndim: int) -> torch.Tensor:
    """An uncompressed IDX file of unsigned bytes (MNIST's format) as a uint8 tensor, as torchvision reads it."""

    path = Path(path)
    blob = path.read_bytes()
    head = 4 + 4 * ndim
    if len(blob) < head or blob[:3] != b"\x00\x00\x08" or blob[3] != ndim:
        raise QMAEError(f"{path} is not an IDX file of {ndim}-dimensional unsigned bytes; download MNIST again")
    shape = tuple(int.from_bytes(blob[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if len(blob) != head + int(np.prod(shape)):
        raise QMAEError(f"{path} is truncated or too long for its header {shape}; download MNIST again")
    return torch.from_numpy(np.frombuffer(blob, dtype=np.uint8, offset=head).reshape(shape).copy())


def split(data: ImageSet, val_fraction: float, seed: int) -> tuple[ImageSet, ImageSet]:
    """Seeded shuffle split into (train, validation); works for any data-set size."""
    if not 0 <= val_fraction < 1:
        raise QMAEError(f"validation fraction must be in [0, 1), got {val_fraction}")
    perm = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
    n_val = int(round(val_fraction * len(data)))
    return data.subset(perm[n_val:]), data.subset(perm[:n_val])


def load_split(
    data_dir: str | Path | None,
    split: str,
    image_size: int,
    limit: int | None = None,
    indices: list[int] | None = None,
) -> ImageSet:
    """The ``test`` or ``train`` split at ``image_size``: its first ``limit`` images, or exactly ``indices``."""
    if split not in ("test", "train"):
        raise QMAEError(f"unknown split {split!r}; use test or train")
    if limit is not None and limit < 1:
        raise QMAEError(f"the number of images must be positive, got {limit}")
    if indices is not None:
        if not indices:
            raise QMAEError("no image indices given")
        limit = max(int(i) for i in indices) + 1
    data = load_mnist(data_dir, train=split == "train", image_size=image_size, limit=limit)
    if indices is None:
        return data
    pos = {int(i): r for r, i in enumerate(data.indices.tolist())}
    missing = [int(i) for i in indices if int(i) not in pos]
    if missing:
        raise QMAEError(f"image indices {missing[:5]} are not in the {split} split at {data_dir}")
    return data.subset(torch.tensor([pos[int(i)] for i in indices]))


def images_sha256(images: torch.Tensor) -> str:
    """A hash of the images as float64, so a record can check it is scored against the same pixels."""

    return hashlib.sha256(images.to(torch.float64).contiguous().numpy().tobytes()).hexdigest()
