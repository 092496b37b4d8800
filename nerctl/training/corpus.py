"""The sentences a run trains, chooses its best epoch and tests on.

Explicit files win over a named dataset; without a dev file, dev is carved
from train by a seeded random split, so a rerun gets the same split.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import TrainConfig
from ..core.errors import InputError
from ..data.datasets import dataset_split
from ..data.formats import read_corpus
from ..data.sentence import Sentence
from ..data.sources import is_regular_file


@dataclass
class TrainData:
    train: list[Sentence]
    dev: list[Sentence]
    test: list[Sentence] | None
    sources: dict[str, str]  # what each split was read from


def split_dev(sentences: list[Sentence], fraction: float, seed: int) -> tuple[list[Sentence], list[Sentence]]:
    """A seeded random dev split; the rest stays in training order."""
    if len(sentences) < 2:
        raise InputError("the training file needs at least 2 sentences to carve a dev split (or give --eval-file)")
    n_dev = min(len(sentences) - 1, max(1, round(len(sentences) * fraction)))
    dev_ids = set(np.random.default_rng(seed).permutation(len(sentences))[:n_dev].tolist())
    train = [s for i, s in enumerate(sentences) if i not in dev_ids]
    dev = [s for i, s in enumerate(sentences) if i in dev_ids]
    return train, dev


def load_data(config: TrainConfig, mirror: str | None = None, warn=None) -> TrainData:
    """Read train/dev/test as the config says (explicit files win over the dataset).

    `warn` hears about repaired tags and changed spans (see `formats.read_corpus`)."""
    # Sources are kept as absolute paths: `report` and the model card read them from anywhere.
    if config.train_file:
        train_path, test_path = _absolute(config.train_file), _absolute(config.test_file)
    else:
        train_path = str(dataset_split(config.dataset, "train", mirror=mirror))
        test_path = _absolute(config.test_file) or str(dataset_split(config.dataset, "test", mirror=mirror))
    def read(path: str) -> list[Sentence]:
        return read_corpus(path, config.format, config.scheme, config.misaligned, warn, config.words)

    train = read(train_path)
    sources = {"train": train_path}
    if config.eval_file:
        sources["dev"] = _absolute(config.eval_file)
        dev = read(sources["dev"])
    else:
        train, dev = split_dev(train, config.dev_fraction, config.seed)
        sources["dev"] = f"{config.dev_fraction:g} of {train_path} (seed {config.seed})"
    test = read(test_path) if test_path else None
    if test_path:
        sources["test"] = test_path
    return TrainData(train, dev, test, sources)


def _absolute(path: str | None) -> str | None:
    if not path:
        return None
    # A pipe (<(cat train.bio) is /dev/fd/63) resolves to a 'pipe:[N]' name that cannot be opened: keep its path.
    return str(Path(path).resolve() if is_regular_file(path) else Path(path).absolute())
