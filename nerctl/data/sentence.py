"""The sentence type every layer shares: words, their IOB2 tags, and where they came from.

Raw text becomes words here too (`split_words`), so that a reader, the model
inputs and the output all split text the same way.
"""
from __future__ import annotations

from dataclasses import dataclass

import regex

# A word is a run of letters, digits and combining marks; any other visible
# character is a word of its own. MIT Movie is lower-case words without
# punctuation, so "Knight?" becomes "Knight" and "?". Control and format
# characters (which BERT's tokenizer drops) separate words like spaces do.
_WORD = regex.compile(r"[\p{L}\p{N}\p{M}]+|[^\p{L}\p{N}\p{M}\s\p{Cc}\p{Cf}]")


@dataclass(frozen=True)
class Word:
    text: str
    start: int  # character offsets into the original string
    end: int


def split_words(text: str) -> list[Word]:
    """Split raw text into words with their character offsets in `text`."""
    return [Word(m.group(), m.start(), m.end()) for m in _WORD.finditer(text)]


@dataclass(frozen=True)
class Sentence:
    """One tagged sentence and where it came from (for error messages).

    `text` and `offsets` (each word's start and end in it) are kept where the
    format has them (JSONL, Label Studio), so that output and `convert` can
    give spans into the original text; BIO files have words only (None).
    """

    words: tuple[str, ...]
    tags: tuple[str, ...]
    source: str = ""
    line: int = 0  # line of the first word (JSONL: the record's line; Label Studio: the task id)
    text: str | None = None
    offsets: tuple[tuple[int, int], ...] | None = None

    def __len__(self) -> int:
        return len(self.words)
