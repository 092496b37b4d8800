"""Every tagged-data format in one registry: detecting it, reading it, writing it.

A format is one module here plus one `Format` entry in `FORMATS`; the
--format / --from / --to / --input-format choices, their help, suffix maps and
auto-detection all come from the entries. Readers return the same
`Sentence`s (words, IOB2 tags, source, line) whatever the format, so
training, scoring, `check` and `convert` never ask which one it was. `auto`
looks at the content, not the name (a pipe has none), trying each format's
detector in registry order; a folder is read by the format that reads
folders.

Names: `mit` (TAG<TAB>word) and `conll` (word ... TAG) are the two BIO column
layouts; `bio` names the family: read, it is whichever layout the columns
show; written, it is `mit`.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

from ...core.atomic import atomic_write_text, write_folder
from ...core.choices import MISALIGNED, OUTPUT_SCHEMES, SCHEMES
from ...core.errors import InputError
from ...core.progress import Warn, warn_on_stderr
from ..align import Tally
from ..sentence import DEFAULT_WORDS, WORD_RULES, Sentence
from ..sources import read_text, split_lines
from . import bio, brat, jsonl, labelstudio


@dataclass
class Source:
    """A file, folder, pipe or /dev/stdin to read, its text read once, when first asked for."""

    path: str
    _text: str | None = field(default=None, repr=False)

    @property
    def is_dir(self) -> bool:
        return Path(self.path).is_dir()

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = read_text(self.path)
        return self._text


@dataclass(frozen=True)
class ReadOptions:
    """How to read: a BIO file's tag scheme, the span formats' --misaligned policy, who hears what changed."""

    scheme: str = "auto"
    misaligned: str = "error"
    warn: Warn = warn_on_stderr
    tally: Tally | None = None  # counts what span formats skipped or changed (check reads it)
    words: str = DEFAULT_WORDS  # the --words rule that splits a span format's text without tokens


Reader = Callable[[Source, ReadOptions], list[Sentence]]
# A writer gives a file's text, or a folder's files by name (BRAT's .txt/.ann pairs).
Writer = Callable[[Sequence[Sentence], str, Warn], "str | dict[str, str]"]


@dataclass(frozen=True)
class Format:
    """One tagged-data format: how to read, write and recognise it, and its one line of help."""

    name: str
    help: str
    read: Reader
    write: Writer | None = None
    detect: Callable[[Source], bool] | None = None  # from the content (or the folder); None: BIO columns decide
    suffixes: tuple[str, ...] = ()  # file names that mean this format (predict --input-format auto, convert --to)
    folder: bool = False  # reads a folder, writes one


# The formats, in the order --help lists them (and auto-detection tries their detectors; BIO columns last).
FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("mit", "TAG<TAB>word", bio.reader("mit"), bio.writer("mit"), None, (".bio", ".iob")),
    Format("conll", "word ... TAG, CoNLL-2003 too", bio.reader("conll"), bio.writer("conll"), None, (".conll",)),
    Format("jsonl", "doccano or Prodigy spans, a JSON object a line", jsonl.read, jsonl.write, jsonl.detect,
           (".jsonl",)),
    Format("labelstudio", "a Label Studio JSON or JSON-MIN export", labelstudio.read, labelstudio.write,
           labelstudio.detect, (".json",)),
    Format("brat", "BRAT standoff: a folder of X.txt/X.ann pairs, or one X.ann beside its X.txt",
           brat.read, brat.write, brat.detect, (".ann",), folder=True),
)}
BIO_FAMILY = "bio"  # mit or conll by the columns on reading, mit on writing
READ_FORMATS = ("auto", *FORMATS, BIO_FAMILY)  # --format, --from
WRITE_FORMATS = (BIO_FAMILY, *(name for name, f in FORMATS.items() if f.write))  # convert --to
# predict --input-format: text (a text a line) or a tagged file of any format; auto: a folder, or a name
# with a format's suffix, is tagged, anything else is text.
INPUT_FORMATS = ("auto", "text", *READ_FORMATS[1:])
TO_FORMAT_HELP = (f"Output format: {BIO_FAMILY} (mit's TAG<TAB>word), "
                  + ", ".join(f"{f.name} ({f.help})" for f in FORMATS.values() if f.write)
                  + " [default: by TARGET's suffix: "
                  + ", ".join(f"{s} {f.name}" for f in FORMATS.values() for s in f.suffixes) + f", else {BIO_FAMILY}].")
INPUT_FORMAT_HELP = ("text: one text a line; " + ", ".join(READ_FORMATS[1:]) + ": tag the words of a tagged file in "
                     "memory (conll output then shows gold and predicted; offsets index the file's texts); auto: "
                     "tagged for a folder or a name ending in "
                     + ", ".join(s for f in FORMATS.values() for s in f.suffixes) + ", else text.")
FORMAT_HELP = ("Format of the data files: auto (from the content), "
               + ", ".join(f"{f.name} ({f.help})" for f in FORMATS.values())
               + f", {BIO_FAMILY} (mit or conll, by the columns).")


def format_for_suffix(path: str | Path) -> str | None:
    """The format a file name says (its suffix), or None."""
    suffix = Path(path).suffix.lower()
    return next((f.name for f in FORMATS.values() if suffix in f.suffixes), None)


def detect_format(source: Source) -> str:
    """The format of `source` by its content (a folder: the format that reads folders), else its BIO layout."""
    for f in FORMATS.values():
        if (f.folder and source.is_dir) or (f.detect and not source.is_dir and f.detect(source)):
            return f.name
    return bio.detect_columns(split_lines(source.text), source.path)


def read_corpus(path: str | Path, fmt: str = "auto", scheme: str = "auto", misaligned: str = "error",
                warn: Warn | None = None, words: str = DEFAULT_WORDS) -> list[Sentence]:
    """Read a tagged file of any format (see `read_with_format`)."""
    return read_with_format(path, fmt, scheme, misaligned, warn, words=words)[1]


def read_with_format(path: str | Path, fmt: str = "auto", scheme: str = "auto", misaligned: str = "error",
                     warn: Warn | None = None, tally: Tally | None = None, words: str = DEFAULT_WORDS
                     ) -> tuple[str, list[Sentence]]:
    """(the format read, the sentences) of `path`: a file, a folder, a pipe or /dev/stdin, read once.

    `scheme` applies to BIO files, `misaligned` and `words` (the --words rule
    that splits a text without tokens) to span formats (see align.py);
    `warn` (default: stderr) hears what was repaired, skipped or changed;
    `tally`, when given, counts what the span formats skipped or changed.
    """
    for name, value, allowed in (("format", fmt, READ_FORMATS), ("scheme", scheme, SCHEMES),
                                 ("misaligned", misaligned, MISALIGNED), ("words", words, tuple(WORD_RULES))):
        if value not in allowed:
            raise InputError(f"unknown {name} {value!r}: choose one of {', '.join(allowed)}")
    source = Source(str(path))
    if fmt == "auto":
        fmt = detect_format(source)
    elif fmt == BIO_FAMILY:
        fmt = bio.detect_columns(split_lines(source.text), source.path)
    options = ReadOptions(scheme, misaligned, warn or warn_on_stderr, tally, words)
    return fmt, FORMATS[fmt].read(source, options)


def render_corpus(sentences: Iterable[Sentence], fmt: str, scheme: str = "iob2",
                  warn: Warn | None = None) -> str | dict[str, str]:
    """Sentences in a format of WRITE_FORMATS: a file's text, or a folder's files by name; tags in `scheme`.

    `warn` (default: stderr) hears what the format cannot keep."""
    if fmt not in WRITE_FORMATS:
        raise InputError(f"unknown output format {fmt!r}: choose one of {', '.join(WRITE_FORMATS)}")
    return _written_as(fmt).write(list(sentences), scheme, warn or warn_on_stderr)


def _written_as(name: str) -> Format:
    """The format a --to value writes (bio: mit)."""
    return FORMATS["mit" if name == BIO_FAMILY else name]


def convert(source: str | Path, target: str | Path, from_format: str = "auto", to_format: str | None = None,
            scheme: str = "auto", to_scheme: str = "iob2", misaligned: str = "error",
            warn: Warn | None = None, words: str = DEFAULT_WORDS) -> tuple[str, str, int]:
    """Read `source` in any format, write it to `target` ('-': stdout) in `to_format`; (from, to, sentences).

    `to_format` None: the format the target's suffix names, else bio. Words and
    tags survive every round trip: text and word offsets are kept where both
    formats have them, and JSONL / Label Studio records carry tokens where
    splitting the text would give other words (see align.tokens_field).
    """
    if str(target) != "-" and Path(target).exists() and Path(target).resolve() == Path(source).resolve():
        raise InputError(f"{target}: the output is the input file")
    to_format = to_format or format_for_suffix(target) or BIO_FAMILY
    if to_scheme not in OUTPUT_SCHEMES:
        raise InputError(f"unknown output scheme {to_scheme!r}: choose one of {', '.join(OUTPUT_SCHEMES)}")
    if str(target) == "-" and to_format in WRITE_FORMATS and _written_as(to_format).folder:
        raise InputError(f"{to_format} writes files, not stdout: give an output folder or X.ann")
    read, sentences = read_with_format(source, from_format, scheme, misaligned, warn, words=words)
    written = render_corpus(sentences, to_format, to_scheme, warn)
    if isinstance(written, dict):
        _write_files(Path(target), written)
    elif str(target) == "-":
        sys.stdout.write(written)
        sys.stdout.flush()
    else:
        atomic_write_text(Path(target), written)
    return read, to_format, len(sentences)


def _write_files(target: Path, files: dict[str, str]) -> None:
    """A folder format's files: into the folder `target`, or, for a target X.ann, as the pair X.txt, X.ann."""
    if target.suffix.lower() not in (".ann", ".txt"):
        write_folder(target, files, keep=tuple(FORMATS["brat"].suffixes) + (".txt",))
        return
    if len(files) > 2:
        raise InputError(f"{target}: one .ann holds one document, the input has {len(files) // 2}; "
                         "give a folder to write them all")
    for name, text in files.items():
        atomic_write_text(target.with_suffix(Path(name).suffix), text)
