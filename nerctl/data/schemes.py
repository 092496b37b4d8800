"""Tag schemes: IOB1, IOB2, IOBES (BIOES) and BILOU, each turned into IOB2 on reading.

nerctl works in IOB2 inside (see tags.py); a file may come in any of these
schemes, detected from its tag prefixes or chosen with --scheme. A sequence
the scheme does not allow is a `SchemeError` at the word that breaks it; the
reader adds the file and line.
"""
from __future__ import annotations

from typing import Sequence

from ..core.choices import SCHEMES
from .tags import OUTSIDE

# The prefixes each scheme writes; E/L end a span, S/U are single-word spans.
_PREFIXES = {"iob1": "BI", "iob2": "BI", "iobes": "BIES", "bilou": "BILU"}
_END = {"iobes": "E", "bilou": "L"}
_SINGLE = {"iobes": "S", "bilou": "U"}


class SchemeError(ValueError):
    """A tag the scheme does not allow at its place: `index` is the word's position."""

    def __init__(self, index: int, message: str):
        super().__init__(message)
        self.index = index


def detect_scheme(prefixes: set[str], where: str) -> str:
    """The scheme a file's tag prefixes (B, I, E, S, L, U) are written in.

    B/I only reads as IOB2, where an I- that starts a span is repaired (IOB1
    files read the same way); E/S mean IOBES, L/U BILOU. `where` names the
    file for the error when both families appear.
    """
    if prefixes & set("ES") and prefixes & set("LU"):
        raise SchemeError(0, f"{where}: mixes IOBES (E-, S-) and BILOU (L-, U-) tags; choose one with --scheme")
    if prefixes & set("ES"):
        return "iobes"
    return "bilou" if prefixes & set("LU") else "iob2"


def to_iob2(tags: Sequence[str], scheme: str) -> list[str]:
    """The IOB2 tags of a sentence in `scheme` (not auto); SchemeError where it breaks the scheme."""
    if scheme not in SCHEMES[1:]:
        raise ValueError(f"unknown scheme {scheme!r}")
    for i, tag in enumerate(tags):
        if tag != OUTSIDE and tag[0] not in _PREFIXES[scheme]:
            raise SchemeError(i, f"{tag!r} is not a tag of the {scheme.upper()} scheme "
                                 f"(prefixes {', '.join(_PREFIXES[scheme])})")
    if scheme in _END:
        return _span_scheme_to_iob2(tags, _END[scheme], _SINGLE[scheme])
    out: list[str] = []
    for i, tag in enumerate(tags):
        continues = bool(out) and out[-1] != OUTSIDE and out[-1][2:] == tag[2:]
        if tag.startswith("I-") and not continues:
            if scheme == "iob2":
                raise SchemeError(i, f"{tag!r} does not continue a {tag[2:]} span (IOB2 starts spans with B-; "
                                     "use --scheme iob1 for files that start them with I-)")
            tag = "B-" + tag[2:]  # IOB1: I- starts a span unless it continues one
        out.append(tag)
    return out


def _span_scheme_to_iob2(tags: Sequence[str], end: str, single: str) -> list[str]:
    """IOBES/BILOU: B opens a span, I continues it, E/L closes it, S/U is a span of one word."""
    out: list[str] = []
    open_type: str | None = None  # the type of a span that still needs its end tag
    for i, tag in enumerate(tags):
        prefix, kind = tag[0], tag[2:]
        if open_type is not None and prefix not in ("I", end):
            raise SchemeError(i, f"{tag!r} comes inside an unfinished {open_type} span "
                                 f"(expected I-{open_type} or {end}-{open_type})")
        if prefix in ("I", end) and open_type != kind:
            raise SchemeError(i, f"{tag!r} does not continue a {kind} span (it needs B-{kind} before it)")
        open_type = kind if prefix in ("B", "I") else None
        out.append(OUTSIDE if tag == OUTSIDE else ("B-" if prefix in ("B", single) else "I-") + kind)
    if open_type is not None:
        raise SchemeError(len(tags) - 1, f"the {open_type} span is not closed at the end of the sentence "
                                         f"(expected {end}-{open_type})")
    return out


def from_iob2(tags: Sequence[str], scheme: str) -> list[str]:
    """Write valid IOB2 `tags` in `scheme` (for convert)."""
    out: list[str] = []
    for i, tag in enumerate(tags):
        nxt = tags[i + 1] if i + 1 < len(tags) else OUTSIDE
        last = not nxt.startswith("I-")  # IOB2: a span ends where no I- follows
        if tag == OUTSIDE or scheme == "iob2":
            out.append(tag)
        elif scheme == "iob1":
            prev = tags[i - 1] if i else OUTSIDE
            # IOB1 writes B- only where a span directly follows one of its own type.
            out.append(("B-" if tag[0] == "B" and prev != OUTSIDE and prev[2:] == tag[2:] else "I-") + tag[2:])
        elif tag[0] == "B":
            out.append((_SINGLE[scheme] if last else "B") + tag[1:])
        else:
            out.append((_END[scheme] if last else "I") + tag[1:])
    return out
