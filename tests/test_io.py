"""Atomic writes: all or nothing, and ordinary file permissions."""

import os
import stat

import pytest

from qmae_qiskit.io import atomic_write_json, atomic_write_text, atomic_write_with


def test_atomic_write_replaces_and_uses_umask_mode(tmp_path):
    p = tmp_path / "sub" / "a.txt"
    atomic_write_text(p, "one")
    atomic_write_text(p, "two")
    assert p.read_text() == "two"
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~mask
    assert [f.name for f in p.parent.iterdir()] == ["a.txt"]


def test_failed_write_leaves_old_file_and_no_temp(tmp_path):
    p = tmp_path / "rec.json"
    atomic_write_json(p, {"job": "abc"})

    def broken(fh):
        fh.write(b"{partial")
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        atomic_write_with(p, broken)
    assert p.read_text().startswith("{") and '"abc"' in p.read_text()
    assert [f.name for f in tmp_path.iterdir()] == ["rec.json"]
