"""Character spans -> word tags: where annotation tools' spans meet the words a model tags.

A span is kept only when it covers whole words; every other case (a boundary
inside a word, overlapping or nested spans, an empty or inverted span, an
offset past the text, a stated span text that is not the text's) is a problem
that the --misaligned policy decides: error (default: an InputError naming the
place and the span), expand (widen a span to the words it touches; drop what
widening cannot mend) or drop. What a policy changed is counted in a `Tally`
and said once per file, so nothing disappears unsaid.
"""
from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from ..core.choices import MISALIGNED
from ..core.errors import InputError
from .sentence import DEFAULT_WORDS, Sentence, Word, split_words
from .tags import OUTSIDE, entity_spans


@dataclass(frozen=True)
class CharSpan:
    """An annotated span as a file states it: [start, end) characters, a type, maybe its text."""

    start: int
    end: int
    label: str
    text: str | None = None
    where: str | None = None  # the span's own place when its format has one (BRAT: the .ann line)

    def describe(self) -> str:
        return f"span [{self.start}, {self.end}) {self.label}"


@dataclass
class Tally:
    """What a policy changed in one file: widened spans, dropped spans by reason."""

    widened: int = 0
    dropped: collections.Counter = field(default_factory=collections.Counter)
    empty: int = 0  # texts without a word: not sentences, skipped
    unannotated: int = 0  # Label Studio tasks with no annotation left (none, or all cancelled): skipped
    rejected: int = 0  # Prodigy records answered "reject" or "ignore": not annotations, skipped

    def message(self, source: str, policy: str) -> str | None:
        """The stderr line for a file, or None when nothing was skipped or changed."""
        parts = [f"skipped {self.empty} text(s) without a word"] if self.empty else []
        if self.unannotated:
            parts.append(f"skipped {self.unannotated} task(s) without a non-cancelled annotation")
        if self.rejected:
            parts.append(f"skipped {self.rejected} record(s) answered reject or ignore")
        changes = [f"widened {self.widened} span(s) to word boundaries"] if self.widened else []
        if self.dropped:
            reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(self.dropped.items()))
            changes.append(f"dropped {sum(self.dropped.values())} span(s) ({reasons})")
        if changes:
            parts.append(f"--misaligned {policy}: {', '.join(changes)}")
        return f"{source}: {'; '.join(parts)}" if parts else None

    def report(self, source: str, policy: str, warn: Callable[[str], None] | None) -> None:
        """Say the file's message through `warn` (stderr in the commands), if there is one and a listener."""
        message = self.message(source, policy)
        if message and warn:
            warn(message)


def words_of(text: str, tokens: Any, where: str, rule: str = DEFAULT_WORDS) -> list[Word]:
    """The words of a record: its tokens when they carry offsets, else `split_words(text, rule)` (as predict
    splits by the same --words rule)."""
    if not isinstance(tokens, list) or not tokens or not all(
            isinstance(t, dict) and isinstance(t.get("start"), int) and isinstance(t.get("end"), int) for t in tokens):
        return split_words(text, rule)
    words = []
    for t in tokens:
        start, end = t["start"], t["end"]
        if not 0 <= start < end <= len(text) or (words and start < words[-1].end) or not text[start:end].strip():
            raise InputError(f"{where}: token [{start}, {end}) is not a word of the text "
                             "(empty, overlapping the one before, or past the text)")
        if "text" in t and t["text"] != text[start:end]:
            raise InputError(f"{where}: token [{start}, {end}) says {t['text']!r} but the text there is "
                             f"{text[start:end]!r}")
        words.append(Word(text[start:end], start, end))
    return words


def spans_to_tags(text: str, words: Sequence[Word], spans: Sequence[CharSpan], where: str,
                  policy: str, tally: Tally) -> list[str]:
    """IOB2 tags of `words` from character `spans`, problems settled by `policy` (see the module doc).

    Spans are taken in order of start (the longer first); a span overlapping
    one already kept is the problem, so the outer of two nested spans stays.
    """
    if policy not in MISALIGNED:
        raise InputError(f"unknown --misaligned policy {policy!r}: choose one of {', '.join(MISALIGNED)}")
    tags = [OUTSIDE] * len(words)
    taken: dict[int, CharSpan] = {}  # word index -> the kept span that covers it
    for span in sorted(spans, key=lambda s: (s.start, -s.end)):
        reason, detail, first, last = _fit(text, words, span)
        widened = reason == "cut a word" and policy == "expand"
        if widened:
            reason = None
        clash = next((taken[i] for i in range(first, last) if i in taken), None) if not reason else None
        if clash is not None:
            reason, detail = "overlapping", f"overlaps {clash.describe()}"
        if reason is None:
            tags[first:last] = ["B-" + span.label] + ["I-" + span.label] * (last - first - 1)
            taken.update({i: span for i in range(first, last)})
            tally.widened += widened
        elif policy == "error":
            raise InputError(f"{span.where or where}: {span.describe()} {text[span.start:span.end]!r} {detail}; "
                             "choose --misaligned expand or drop to read it anyway")
        else:
            tally.dropped[reason] += 1
    return tags


def _fit(text: str, words: Sequence[Word], span: CharSpan) -> tuple[str | None, str, int, int]:
    """(problem or None, its description, first word, last word + 1) of the words `span` touches."""
    if span.start >= span.end:
        return "empty or inverted", "is empty or inverted", 0, 0
    if span.start < 0 or span.end > len(text):
        return "past the text", f"is past the text (0 to {len(text)} characters)", 0, 0
    if span.text is not None and span.text != text[span.start:span.end]:
        return "text differs", f"states the text {span.text!r}, which is not the text's", 0, 0
    inside = [i for i, w in enumerate(words) if w.end > span.start and w.start < span.end]
    if not inside:
        return "no word", "covers no word", 0, 0
    first, last = inside[0], inside[-1] + 1
    cut = [w.text for w in (words[first], words[last - 1]) if w.start < span.start or w.end > span.end]
    if cut:
        return "cut a word", f"has a boundary inside the word {cut[0]!r}", first, last
    return None, "", first, last


def aligned_sentence(text: str, tokens: Any, spans: Sequence[CharSpan], source: str, line: int, where: str,
                     policy: str, tally: Tally, rule: str = DEFAULT_WORDS) -> Sentence | None:
    """The Sentence of one annotated text (None when it has no words: counted in `tally.empty`); a text
    without tokens is split by the --words `rule`."""
    words = words_of(text, tokens, where, rule)
    if not words:
        tally.empty += 1
        return None
    tags = spans_to_tags(text, words, spans, where, policy, tally)
    return Sentence(tuple(w.text for w in words), tuple(tags), source, line, text,
                    tuple((w.start, w.end) for w in words))


def sentence_words(sentence: Sentence) -> tuple[str, list[Word]]:
    """A sentence's text and words with offsets: its own where the format kept them, else words joined by spaces.

    predict tags the words of a tagged file through this, so its spans index the original text."""
    if sentence.text is not None and sentence.offsets is not None:
        return sentence.text, [Word(w, a, b) for w, (a, b) in zip(sentence.words, sentence.offsets)]
    text = " ".join(sentence.words)
    words, at = [], 0
    for word in sentence.words:
        words.append(Word(word, at, at + len(word)))
        at += len(word) + 1
    return text, words


def tokens_field(text: str, words: Sequence[Word]) -> list[dict] | None:
    """Prodigy-style tokens for a record, or None when `split_words(text)` gives the same words.

    A record without tokens is plain doccano / Label Studio; with them, words
    that the splitter would cut differently ("U.S.", "pg-13") come back whole.
    """
    if [(w.text, w.start, w.end) for w in split_words(text)] == [(w.text, w.start, w.end) for w in words]:
        return None
    return [{"text": w.text, "start": w.start, "end": w.end, "id": i} for i, w in enumerate(words)]


def char_spans(words: Sequence[Word], tags: Sequence[str]) -> list[tuple[int, int, str]]:
    """(start, end, type) in characters of each IOB2 span of `tags` over `words`."""
    return [(words[first].start, words[last - 1].end, kind) for kind, first, last in entity_spans(tags)]
