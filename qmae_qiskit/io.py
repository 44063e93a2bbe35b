"""Atomic file writes: a temp file in the same folder, fsync, then rename, so a crash never leaves half a file."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from qmae_qiskit.errors import QMAEError, one_line


def atomic_write_bytes(path: str | os.PathLike, data: bytes, keep: str | os.PathLike | None = None) -> Path:
    """Write ``data`` to ``path`` atomically (creating parent folders); see :func:`atomic_write_with` for ``keep``."""
    return atomic_write_with(path, lambda fh: fh.write(data), keep=keep)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def atomic_write_with(
    path: str | os.PathLike, writer: Callable[[Any], Any], keep: str | os.PathLike | None = None
) -> Path:
    """Call ``writer(binary_file_handle)`` on a temp file, then rename it over ``path``.

    With ``keep``, the file at ``path`` (if any) is first renamed to ``keep``, so the last two versions survive;
    a crash between the two renames leaves the old version at ``keep`` and none at ``path``, never a torn file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the mode open() would
        with os.fdopen(fd, "wb") as fh:
            writer(fh)
            fh.flush()
            os.fsync(fh.fileno())
        if keep is not None and path.exists():
            os.replace(path, keep)
        os.replace(tmp, path)
        if keep is not None:
            _fsync_dir(path.parent)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def read_json(path: str | os.PathLike, what: str, fix: str) -> Any:
    """Parse a JSON file the toolkit wrote; unreadable or corrupt, it fails with one line naming ``what``, the
    path, the reason and ``fix`` (the file itself is never touched)."""

    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise QMAEError(f"{what} {path} is unreadable or not valid JSON ({one_line(exc)}); {fix}") from None


def _fsync_dir(folder: Path) -> None:
    """Make renames in ``folder`` durable (best effort: not every file system lets a folder be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")
