"""MNIST without ceremony: where it is read from, a download into the user cache once, and offline one line."""

from __future__ import annotations

import gzip
import io
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from conftest import write_small_mnist

from qmae_qiskit.cli import main
from qmae_qiskit.data import RAW_FILES, has_mnist, load_mnist, resolve_data_dir, user_data_dir
from qmae_qiskit.errors import QMAEError


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A clean working directory and cache: no $QMAE_DATA_DIR, $XDG_CACHE_HOME in tmp, cwd in tmp."""
    monkeypatch.delenv("QMAE_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return tmp_path


def offline(monkeypatch) -> list[str]:
    """Every URL torchvision opens fails as it does without a network; returns the URLs tried."""
    tried: list[str] = []

    def fail(request, *args, **kwargs):
        tried.append(request.full_url if hasattr(request, "full_url") else str(request))
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", fail)
    return tried


def test_resolution_order(home, mnist_dir, monkeypatch):
    cache = home / "xdg" / "qmae-qiskit"
    assert user_data_dir() == cache
    given = write_small_mnist(mnist_dir, home / "given", 5, 5)
    local = write_small_mnist(mnist_dir, Path("data"), 6, 6)
    write_small_mnist(mnist_dir, cache, 7, 7)
    assert resolve_data_dir(given) == given  # a folder given wins
    assert resolve_data_dir(None) == Path("data")  # then ./data, the earlier default
    assert len(load_mnist(None, train=True, image_size=4)) == 6
    for f in RAW_FILES:
        (local / "MNIST" / "raw" / f).unlink()
    assert resolve_data_dir(None) == cache  # then the user cache
    assert len(load_mnist(None, train=True, image_size=4)) == 7
    env = write_small_mnist(mnist_dir, home / "env", 8, 8)
    monkeypatch.setenv("QMAE_DATA_DIR", str(env))
    write_small_mnist(mnist_dir, Path("data"), 6, 6)
    assert user_data_dir() == env and resolve_data_dir(None) == env  # $QMAE_DATA_DIR is the cache and beats ./data
    assert len(load_mnist(None, train=False, image_size=4)) == 8


def test_offline_download_is_one_line_and_leaves_nothing(home, monkeypatch):
    tried = offline(monkeypatch)
    with pytest.raises(QMAEError) as err:
        load_mnist(None, train=True, image_size=4)
    msg = str(err.value)
    assert "\n" not in msg and "downloading it into" in msg and "--data-dir" in msg
    assert tried and all("mnist" in url for url in tried)
    assert not (home / "xdg" / "qmae-qiskit").exists()  # nothing half-written
    # an explicit folder is never downloaded into without --download: the old one-line error, no network
    tried.clear()
    with pytest.raises(QMAEError, match="no MNIST data in"):
        load_mnist(home / "elsewhere", train=True, image_size=4)
    assert not tried


def test_offline_cli_exits_2_with_one_line(home, monkeypatch):
    offline(monkeypatch)
    res = CliRunner().invoke(main, ["train", "--out", str(home / "runs"), "--no-progress"])
    assert res.exit_code == 2, res.output
    errors = [line for line in res.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "--data-dir" in errors[0]
    assert not (home / "runs").exists() and not (home / "xdg" / "qmae-qiskit").exists()


class _Response(io.BytesIO):
    def __init__(self, url: str, body: bytes):
        super().__init__(body)
        self.url, self.length = url, len(body)


def test_downloaded_once_into_the_cache_with_a_progress_bar(home, mnist_dir, monkeypatch, capsys):
    """A mirror that serves the first images of MNIST (gzipped, as the real one does); checksums are the only
    thing changed, since these are not the published archives."""
    from torchvision.datasets import MNIST

    small = write_small_mnist(mnist_dir, home / "served", 20, 10) / "MNIST" / "raw"
    served = {f"{f}.gz": gzip.compress((small / f).read_bytes()) for f in RAW_FILES}
    gets: list[str] = []

    def urlopen(request, *args, **kwargs):
        url = request.full_url
        if request.headers.get("Method") != "HEAD":
            gets.append(url)
        return _Response(url, served[url.rsplit("/", 1)[1]])

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    monkeypatch.setattr(MNIST, "mirrors", ["http://mirror.test/mnist/"])
    monkeypatch.setattr(MNIST, "resources", [(name, None) for name, _ in MNIST.resources])
    data = load_mnist(None, train=True, image_size=28)
    cache = home / "xdg" / "qmae-qiskit"
    assert has_mnist(cache) and len(gets) == 4
    assert sorted(p.name for p in (cache / "MNIST" / "raw").iterdir()) == sorted(RAW_FILES)  # no archives, no temp
    assert [p.name for p in cache.iterdir()] == ["MNIST"]
    expected = load_mnist(small.parent.parent, train=True, image_size=28)
    assert torch.equal(data.images, expected.images) and torch.equal(data.labels, expected.labels)
    err = capsys.readouterr().err
    assert "downloading it once" in err and "%|" in err  # the notice and tqdm's bar
    load_mnist(None, train=False, image_size=4)
    assert len(gets) == 4  # once
    # a folder given explicitly is downloaded into only when asked (--download), the same way
    given = home / "given"
    assert resolve_data_dir(given) == given and not given.exists() and len(gets) == 4
    assert len(load_mnist(given, train=False, image_size=28, download=True)) == 10 and has_mnist(given)
    assert len(gets) == 8
