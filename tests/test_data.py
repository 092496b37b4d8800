"""Downloads: checksum-verified, atomic, from a local folder or an http(s) mirror."""
import hashlib
import http.server
import os
import threading
from pathlib import Path

import pytest

from nerctl.data import datasets as data
from nerctl.core.errors import InputError, NerctlError
from nerctl.core.atomic import current_umask
from conftest import SHARED_DATA, free_ports

FILES = {"a.bio": b"O\thello\n\n", "b.bio": b"B-X\tworld\n\n"}


@pytest.fixture
def toy(monkeypatch, tmp_path):
    """A dataset of two small files served from a local mirror folder."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for name, content in FILES.items():
        (mirror / name).write_bytes(content)
    sums = {name: hashlib.sha256(content).hexdigest() for name, content in FILES.items()}
    dataset = data.Dataset("toy", "https://example.invalid/toy/", sums, {"train": "a.bio", "test": "b.bio"}, "toy")
    monkeypatch.setitem(data.DATASETS, "toy", dataset)
    monkeypatch.delenv("NERCTL_MIRROR", raising=False)
    return mirror


def no_leftovers(folder: Path):
    return [p.name for p in folder.iterdir() if p.name.startswith(".")] == []


def test_download_from_local_mirror_verifies_and_keeps(toy, tmp_path):
    paths = data.download("toy", tmp_path / "data", str(toy))
    assert {p.name: p.read_bytes() for p in paths.values()} == FILES
    assert oct(paths["a.bio"].stat().st_mode & 0o777) == oct(0o666 & ~current_umask())
    before = {p: p.stat().st_mtime_ns for p in paths.values()}
    os.remove(toy / "a.bio")  # present and verified: not fetched again
    again = data.download("toy", tmp_path / "data", str(toy))
    assert {p: p.stat().st_mtime_ns for p in again.values()} == before


def test_checksum_mismatch_leaves_nothing_behind(toy, tmp_path):
    (toy / "b.bio").write_bytes(b"B-X\ttampered\n\n")
    target = tmp_path / "data"
    with pytest.raises(NerctlError, match="checksum mismatch for b.bio"):
        data.download("toy", target, str(toy))
    assert not (target / "toy" / "b.bio").exists()
    assert no_leftovers(target / "toy")


def test_corrupt_existing_file_is_not_trusted(toy, tmp_path):
    target = tmp_path / "data"
    (target / "toy").mkdir(parents=True)
    (target / "toy" / "a.bio").write_bytes(b"O\thel")  # a partial earlier download
    paths = data.download("toy", target, str(toy))
    assert paths["a.bio"].read_bytes() == FILES["a.bio"]


def test_force_fetches_again(toy, tmp_path):
    data.download("toy", tmp_path / "data", str(toy))
    os.remove(toy / "a.bio")
    with pytest.raises(Exception, match="no file a.bio"):
        data.download("toy", tmp_path / "data", str(toy), force=True)


def test_http_mirror_and_unreachable_mirror(toy, tmp_path):
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(toy), **k)  # noqa: E731
    http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        seen = []
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        paths = data.download("toy", tmp_path / "data", url, progress=lambda name, done, total: seen.append(name))
        assert paths["b.bio"].read_bytes() == FILES["b.bio"]
        assert set(seen) == set(FILES)
    finally:
        server.shutdown()
    with pytest.raises(NerctlError, match="cannot fetch"):
        data.download("toy", tmp_path / "other", f"http://127.0.0.1:{free_ports()[0]}/")
    assert no_leftovers(tmp_path / "other" / "toy")


@pytest.mark.parametrize("mirror, message", [
    ("http://example.org/movie/", "plain http is refused; use https:// or a local folder"),
    ("ftp://example.org/movie/", "unsupported scheme 'ftp'"),
])
def test_only_https_or_local_mirrors(toy, tmp_path, mirror, message):
    with pytest.raises(InputError, match=message):
        data.download("toy", tmp_path / "data", mirror)
    assert not (tmp_path / "data").exists()


def test_data_dir_from_env_then_xdg_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("NERCTL_DATA_DIR", str(tmp_path / "env"))
    assert data.default_data_dir() == tmp_path / "env"
    monkeypatch.delenv("NERCTL_DATA_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data.default_data_dir() == tmp_path / "xdg" / "nerctl"


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="no ../shared/data/mitmovie mirror beside the repo")
def test_pinned_mitmovie_checksums_match_the_shared_mirror(tmp_path):
    sums = dict(reversed(line.split()) for line in (SHARED_DATA / "SHA256SUMS").read_text().splitlines() if line)
    assert data.DATASETS["mitmovie"].files == sums
    paths = data.download("mitmovie", tmp_path, str(SHARED_DATA))
    assert sorted(paths) == ["engtest.bio", "engtrain.bio"]
