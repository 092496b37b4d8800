"""The tag scheme, IOB2, and the label map: every rule about tags lives here.

IOB2: a word is O (outside any entity), B-TYPE (it begins a TYPE span) or
I-TYPE (it continues the TYPE span of the word before). Every file nerctl
reads is turned into IOB2, every tag sequence it writes is valid IOB2, and
seqeval scores it in strict IOB2 mode.
"""
from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

from ..core.errors import InputError

if TYPE_CHECKING:
    import numpy as np

    from .sentence import Sentence

OUTSIDE = "O"
# Tags as corpora write them: O, or a scheme prefix (B I E S L U, see schemes.py) and an entity type.
TAG_PATTERN = re.compile(r"^(O|[BIESLU]-[A-Za-z0-9_.$&-]+)$")
Span = tuple[str, int, int]  # (type, first word, last word + 1)


TYPE_RULE = "of letters, digits, _ . $ & - (no spaces)"  # what TAG_PATTERN allows after the prefix


def is_tag(field: str) -> bool:
    return TAG_PATTERN.match(field) is not None


def is_entity_type(value: object) -> bool:
    """A span label nerctl can tag as B-TYPE / I-TYPE."""
    return isinstance(value, str) and is_tag("B-" + value)


def entity_type(tag: str) -> str:
    """A word's entity type ("O" outside entities): B-X and I-X are both X."""
    return OUTSIDE if tag == OUTSIDE else tag[2:]


def repair_bio(tags: Sequence[str]) -> list[str]:
    """Make a tag sequence valid IOB2: an I-X not continuing an X span becomes B-X.

    Files in IOB1 style (or hand-edited ones) start spans with I-; model
    output may too. Spans, printed tags and seqeval's strict scoring then agree.
    """
    out: list[str] = []
    for tag in tags:
        if tag.startswith("I-") and (not out or out[-1] == OUTSIDE or out[-1][2:] != tag[2:]):
            tag = "B-" + tag[2:]
        out.append(tag)
    return out


def entity_spans(tags: Sequence[str]) -> list[Span]:
    """(type, first word, last word + 1) for each span of a valid IOB2 sequence."""
    spans: list[Span] = []
    for i, tag in enumerate(tags):
        if tag.startswith("B-"):
            spans.append((tag[2:], i, i + 1))
        elif tag.startswith("I-") and spans and spans[-1][2] == i and spans[-1][0] == tag[2:]:
            spans[-1] = (tag[2:], spans[-1][1], i + 1)
    return spans


@functools.lru_cache(maxsize=8)
def iob2_transitions(labels: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(transition, start) scores: 0 where IOB2 allows a label (after another / first), else -inf."""
    import numpy as np  # here: reading tags (the CLI's start, every reader) needs no numpy

    k = len(labels)
    inside = [label.startswith("I-") for label in labels]
    # allowed[i, j]: label j may follow label i
    allowed = np.array([[not inside[j] or (labels[i] != OUTSIDE and labels[i][2:] == labels[j][2:])
                         for j in range(k)] for i in range(k)])
    return np.where(allowed, 0.0, -np.inf), np.where(inside, -np.inf, 0.0)


@dataclass(frozen=True)
class LabelMap:
    """Tag <-> id mapping; the order is part of the trained model."""

    labels: tuple[str, ...]

    @classmethod
    def from_sentences(cls, sentences: Iterable["Sentence"]) -> "LabelMap":
        """`O` first, then B-/I- of every entity type seen, sorted.

        Both B- and I- are added for each type so that a type seen only as B-
        in training still has a complete pair at prediction time.
        """
        types = {entity_type(tag) for s in sentences for tag in s.tags} - {OUTSIDE}
        return cls((OUTSIDE,) + tuple(sorted(f"{p}-{t}" for t in types for p in "BI")))

    @classmethod
    def load(cls, path: str | Path) -> "LabelMap":
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(tuple(data["labels"]))

    def to_json(self) -> str:
        return json.dumps({"labels": list(self.labels)}, indent=2) + "\n"

    @property
    def label2id(self) -> dict[str, int]:
        return {label: i for i, label in enumerate(self.labels)}

    @property
    def types(self) -> list[str]:
        """The entity types, sorted."""
        return sorted({entity_type(label) for label in self.labels} - {OUTSIDE})

    def check(self, sentences: Sequence["Sentence"], path: str | Path) -> None:
        """Fail, listing them, if `sentences` use tags this map has never seen."""
        known = set(self.labels)
        unknown = sorted({t for s in sentences for t in s.tags} - known)
        if unknown:
            raise InputError(
                f"{path}: {len(unknown)} tag(s) the model was not trained on: {', '.join(unknown)}"
            )
