"""Datasets: where they live, how they are fetched and verified.

Files are fetched to a temporary name beside the target, checked against a
sha256 pinned here, then renamed: a file under its final name is always a
verified one, and an interrupted or corrupt download leaves nothing behind.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..core.atomic import current_umask
from ..core.errors import InputError, NerctlError


@dataclass(frozen=True)
class Dataset:
    name: str
    home: str  # base URL of the corpus' real home
    files: dict[str, str]  # file name -> sha256
    splits: dict[str, str]  # split name -> file name
    description: str


DATASETS = {
    "mitmovie": Dataset(
        name="mitmovie",
        home="https://groups.csail.mit.edu/sls/downloads/movie/",
        files={
            "engtrain.bio": "68d90d7b29bc7dbf54efce6dfddbcdcb685293a00eaf76cd48c3acb5d3b68fe8",
            "engtest.bio": "2ba7c6da2e5c1d897ebbcbcefad9e0f03eed41b183106e7f26b7f24b704282fd",
        },
        splits={"train": "engtrain.bio", "test": "engtest.bio"},
        description="MIT Movie 'eng' corpus: 9,775 train / 2,443 test sentences, 12 entity types",
    ),
}

# Progress callback: (file name, bytes so far, total bytes or None).
Progress = Callable[[str, int, "int | None"], None]


def get_dataset(name: str) -> Dataset:
    try:
        return DATASETS[name]
    except KeyError:
        raise InputError(f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)}") from None


def default_data_dir() -> Path:
    """NERCTL_DATA_DIR, else the user cache ($XDG_CACHE_HOME/nerctl or ~/.cache/nerctl)."""
    if os.environ.get("NERCTL_DATA_DIR"):
        return Path(os.environ["NERCTL_DATA_DIR"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "nerctl"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


_LOOPBACK = ("127.0.0.1", "::1", "localhost")


def _is_url(source: str) -> bool:
    return urllib.parse.urlparse(source).scheme in ("http", "https", "file")


def _check_source(source: str) -> None:
    """Downloads come over https or from a local folder/file:// URL (plain http only from this machine)."""
    url = urllib.parse.urlparse(source)
    if url.scheme == "http" and url.hostname not in _LOOPBACK:
        raise InputError(f"mirror {source}: plain http is refused; use https:// or a local folder")
    if _is_url(source) or url.scheme == "":
        return
    raise InputError(f"mirror {source}: unsupported scheme {url.scheme!r}; use https:// or a local folder")


def _fetch(source: str, name: str, dest, progress: Progress | None) -> None:
    """Copy `source`/`name` (a URL base or a local folder) into the open file `dest`."""
    if not _is_url(source):
        path = Path(source).expanduser() / name
        if not path.is_file():
            raise InputError(f"mirror {source}: no file {name} there")
        with open(path, "rb") as f:
            shutil.copyfileobj(f, dest)
        return
    url = urllib.parse.urljoin(source.rstrip("/") + "/", name)
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            total = response.headers.get("Content-Length")
            total = int(total) if total and total.isdigit() else None
            done = 0
            for block in iter(lambda: response.read(1 << 16), b""):
                dest.write(block)
                done += len(block)
                if progress:
                    progress(name, done, total)
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise NerctlError(f"cannot fetch {url}: {reason} (a mirror can be set with --mirror or NERCTL_MIRROR)") from None


def download(
    dataset: str = "mitmovie",
    data_dir: str | Path | None = None,
    mirror: str | None = None,
    force: bool = False,
    progress: Progress | None = None,
) -> dict[str, Path]:
    """Make sure every file of `dataset` is present and verified; return their paths.

    Files already present with the right checksum are kept (unless `force`);
    anything else is fetched from `mirror` (a URL base or a local folder) or the
    corpus' home, verified, and only then put in place.
    """
    ds = get_dataset(dataset)
    target = Path(data_dir).expanduser() if data_dir else default_data_dir()
    target = target / ds.name
    source = mirror or os.environ.get("NERCTL_MIRROR") or ds.home
    _check_source(source)
    target.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, expected in ds.files.items():
        path = target / name
        paths[name] = path
        if path.is_file() and not force and sha256_of(path) == expected:
            continue
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=target)
        try:
            with os.fdopen(fd, "wb") as f:
                _fetch(source, name, f, progress)
                f.flush()
                os.fsync(f.fileno())
            actual = sha256_of(Path(tmp))
            if actual != expected:
                raise NerctlError(
                    f"checksum mismatch for {name} from {source}: expected sha256 {expected}, got {actual}; "
                    "nothing was saved"
                )
            os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600; give the usual mode
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return paths


def dataset_split(dataset: str, split: str, data_dir: str | Path | None = None, mirror: str | None = None) -> Path:
    """Path of one split of a dataset, downloading (and verifying) it if needed."""
    ds = get_dataset(dataset)
    if split not in ds.splits:
        raise InputError(f"dataset {dataset} has no split {split!r}: choose one of {', '.join(ds.splits)}")
    return download(dataset, data_dir, mirror)[ds.splits[split]]
