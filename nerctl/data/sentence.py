"""The sentence type every layer shares: words, their IOB2 tags, and where they came from.

Raw text becomes words here too (`split_words`), so that a reader, the model
inputs and the output all split text the same way.
"""
from __future__ import annotations

from dataclasses import dataclass

import regex

# Scripts written without spaces between words: each of their grapheme clusters is a word of its own
# (as multilingual BERT's tokenizer splits Han characters), so that an entity inside a run of them can
# be tagged. Thai, Lao, Khmer and Burmese by grapheme cluster, their vowel and tone marks kept on it.
_UNSPACED = r"\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}"
# Elsewhere a word is a run of letters, digits and combining marks (a zero-width joiner or non-joiner
# between two of them kept inside, as Persian and Indic words use them); any other visible grapheme
# cluster is a word of its own: "Knight?" is "Knight" and "?" (MIT Movie's words), an emoji sequence one
# word. Control and format characters (which BERT's tokenizer drops) separate words like spaces do.
_WORD = regex.compile(
    rf"(?=[{_UNSPACED}])\X"
    rf"|(?:(?![{_UNSPACED}])[\p{{L}}\p{{N}}\p{{M}}])+(?:[\u200c\u200d](?:(?![{_UNSPACED}])[\p{{L}}\p{{N}}\p{{M}}])+)*"
    r"|(?=[^\p{L}\p{N}\p{M}\s\p{Cc}\p{Cf}])\X")


@dataclass(frozen=True)
class Word:
    text: str
    start: int  # character offsets into the original string
    end: int


# --words: how raw text becomes words, by name (the rule is saved in a run, so predict splits as training
# did). Each is a pattern whose matches are the words; offsets are the matches' own.
WORD_RULES: dict[str, tuple[regex.Pattern, str]] = {
    "script": (_WORD, "runs of letters and digits where a script is written with spaces (MIT Movie's words), "
                      "each character of Chinese, Japanese, Thai, Lao, Khmer and Burmese, any other sign or emoji "
                      "alone"),
    "whitespace": (regex.compile(r"\S+"), "whatever lies between whitespace (text tokenized with spaces)"),
    "characters": (regex.compile(r"(?=\S)\X"), "each visible character (grapheme cluster) a word"),
}
DEFAULT_WORDS = "script"
WORDS_HELP = ("How raw text becomes words: " + "; ".join(f"{name}: {help}" for name, (_, help) in WORD_RULES.items())
              + ". Saved in the run: predict and serve split as training did.")


def split_words(text: str, rule: str = DEFAULT_WORDS) -> list[Word]:
    """Split raw text into words with their character offsets in `text`, by a rule of WORD_RULES."""
    return [Word(m.group(), m.start(), m.end()) for m in WORD_RULES[rule][0].finditer(text)]


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
