"""The one preprocessing path shared by train, evaluate and predict.

- raw text split into words the way MIT Movie is split, keeping character offsets;
- word-piece encoding with [CLS]/[SEP], the label on the first piece of each word
  and -100 (ignored by the loss) everywhere else;
- sentences longer than the model window split into overlapping windows, each
  word "owned" by exactly one window, so training sees every word once and
  prediction gives exactly one tag per word;
- batches of windows of (nearly) equal length, padded per batch, so almost no
  compute goes to padding.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..core.errors import InputError
from ..data.tags import LabelMap

IGNORE_INDEX = -100  # label id the loss and the metrics skip
PAD_MULTIPLE = 4  # inference pads each window to a multiple of this (see tagging_plan)


# ---------------------------------------------------------------- raw text


# ---------------------------------------------------------------- encoding


@dataclass
class Window:
    """One model input: [CLS] pieces [SEP] for a span of a sentence's words."""

    sentence: int  # index of the sentence it came from
    input_ids: np.ndarray  # int32, including [CLS] and [SEP]
    word_index: np.ndarray  # int32, same length: the word a position predicts, else -1
    labels: np.ndarray | None  # int32, same length: label id or IGNORE_INDEX


def plan_windows(piece_counts: Sequence[int], budget: int) -> list[tuple[int, int, int, int]]:
    """Cover words with windows of at most `budget` pieces, overlapping by about half.

    Returns (start, end, own_start, own_end) word ranges. The owned ranges
    partition the sentence; each boundary sits in the middle of an overlap, so
    every owned word has context on both sides where the sentence allows.
    """
    n = len(piece_counts)
    spans: list[tuple[int, int]] = []
    start = 0
    while True:
        end, total = start, 0
        while end < n and total + piece_counts[end] <= budget:
            total += piece_counts[end]
            end += 1
        spans.append((start, end))
        if end >= n:
            break
        # Next window starts where at most half the budget overlaps this one,
        # but always at least one word further on.
        nxt, overlap = end, 0
        while nxt - 1 > start and overlap + piece_counts[nxt - 1] <= budget // 2:
            nxt -= 1
            overlap += piece_counts[nxt]
        start = max(nxt, start + 1)
    owned = [0] + [(spans[k + 1][0] + spans[k][1] + 1) // 2 for k in range(len(spans) - 1)] + [n]
    return [(s, e, owned[k], owned[k + 1]) for k, (s, e) in enumerate(spans)]


@dataclass
class PieceTokenizer:
    """A fast (Rust) word-piece tokenizer and its special-token ids.

    Built from a transformers tokenizer in training, or straight from a run's
    tokenizer folder with the `tokenizers` library at prediction time, which
    spares `predict` the slow transformers import.
    """

    backend: Any  # tokenizers.Tokenizer
    cls_id: int
    sep_id: int
    unk_id: int
    pad_id: int

    @classmethod
    def from_transformers(cls, tokenizer) -> "PieceTokenizer":
        if not getattr(tokenizer, "is_fast", False):
            raise InputError("the model's tokenizer has no fast (Rust) version; nerctl needs word ids")
        from tokenizers import Tokenizer

        backend = _without_limits(Tokenizer.from_str(tokenizer.backend_tokenizer.to_str()))  # the caller's kept
        return cls(backend, tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.unk_token_id,
                   tokenizer.pad_token_id or 0)

    @classmethod
    def from_folder(cls, folder: str | Path) -> "PieceTokenizer":
        """Load tokenizer.json and special_tokens_map.json as `save_pretrained` wrote them."""
        from tokenizers import Tokenizer

        folder = Path(folder)
        try:
            backend = _without_limits(Tokenizer.from_file(str(folder / "tokenizer.json")))
            special = json.loads((folder / "special_tokens_map.json").read_text(encoding="utf-8"))
        except Exception as err:  # the tokenizers library raises plain Exception
            raise InputError(f"{folder}: cannot load the tokenizer ({err})") from None

        def token_id(name: str) -> int | None:
            token = special.get(name)
            token = token.get("content") if isinstance(token, dict) else token
            return backend.token_to_id(token) if token else None

        ids = {name: token_id(f"{name}_token") for name in ("cls", "sep", "unk", "pad")}
        missing = [name for name in ("cls", "sep", "unk") if ids[name] is None]
        if missing:
            raise InputError(f"{folder}: the tokenizer has no {', '.join(missing)} token")
        return cls(backend, ids["cls"], ids["sep"], ids["unk"], ids["pad"] or 0)

    def encode_words(self, sentences: Sequence[Sequence[str]]) -> list[tuple[list[int], list[int | None]]]:
        """(piece ids, word index of each piece) per sentence, no special tokens."""
        encodings = self.backend.encode_batch([list(words) for words in sentences],
                                              is_pretokenized=True, add_special_tokens=False)
        return [(e.ids, e.word_ids) for e in encodings]

    @property
    def words_apart(self) -> bool:
        """Whether a word's pieces never depend on the words around it: WordPiece after BERT's pre-tokenizer
        (BERT, DistilBERT, ELECTRA), which normalizes and splits each given word on its own. SentencePiece's
        and byte-level BPE's pre-tokenizers may mark a sentence's first word apart; they are not."""
        return (type(self.backend.model).__name__ == "WordPiece"
                and type(self.backend.pre_tokenizer).__name__ == "BertPreTokenizer")

    def word_pieces(self, sentences: Sequence[Sequence[str]]) -> list[list[list[int]]]:
        """Piece ids of each word of each sentence ([] for a word the tokenizer gives none). Where
        `words_apart`, each distinct word is tokenized once, all of them in one call: a corpus repeats
        its words, and one long sequence costs the tokenizer far less than many short ones."""
        if not self.words_apart:
            return [_group_pieces(ids, word_ids, len(words))
                    for words, (ids, word_ids) in zip(sentences, self.encode_words(sentences))]
        distinct = list(dict.fromkeys(word for words in sentences for word in words))
        if not distinct:
            return [[] for _ in sentences]
        (ids, word_ids), = self.encode_words([distinct])
        known = dict(zip(distinct, _group_pieces(ids, word_ids, len(distinct))))
        return [[known[word] for word in words] for words in sentences]


def _group_pieces(ids: Sequence[int], word_ids: Sequence[int | None], words: int) -> list[list[int]]:
    """Piece ids per word from an encoding's ids and the word index of each."""
    pieces: list[list[int]] = [[] for _ in range(words)]
    for token_id, w in zip(ids, word_ids):
        if w is not None:
            pieces[w].append(token_id)
    return pieces


def _without_limits(backend: Any) -> Any:
    """`backend` (a tokenizers.Tokenizer) without the truncation and padding its tokenizer.json may carry
    (MiniLM's: 128 pieces, padded to 128). Windows are nerctl's to cut: truncated, a long sentence's later
    words would get no pieces (and [UNK]); padded, every sentence would be encoded 128 pieces long."""
    backend.no_truncation()
    backend.no_padding()
    return backend


class Encoder:
    """Turns word lists (and tags) into model windows with a fast tokenizer."""

    def __init__(self, tokenizer: PieceTokenizer, max_len: int, label_map: LabelMap | None = None):
        if max_len < 8:
            raise InputError(f"max_len {max_len} is too small (at least 8)")
        self.tokenizer = tokenizer
        self.max_len = max_len
        self.label_map = label_map
        self.pad_id = tokenizer.pad_id

    def pieces_per_word(self, sentences: Sequence[Sequence[str]]) -> list[list[list[int]]]:
        """Piece ids per word per sentence. A word with no pieces gets [UNK]."""
        budget = self.max_len - 2
        out: list[list[list[int]]] = []
        # One batched call per chunk keeps memory bounded on huge inputs.
        chunk = 1024
        for i in range(0, len(sentences), chunk):
            for pieces in self.tokenizer.word_pieces(sentences[i : i + chunk]):
                # An over-long single word keeps its first pieces: its label sits
                # on the first one, and the window must still fit.
                out.append([p[:budget] if p else [self.tokenizer.unk_id] for p in pieces])
        return out

    def encode(
        self, sentences: Sequence[Sequence[str]], tags: Sequence[Sequence[str]] | None = None
    ) -> list[Window]:
        """Encode sentences into windows; `tags` adds labels for training/eval."""
        if tags is not None and self.label_map is None:
            raise ValueError("encoding tags needs a label map")
        label2id = self.label_map.label2id if self.label_map else {}
        windows: list[Window] = []
        for index, pieces in enumerate(self.pieces_per_word(sentences)):
            counts = [len(p) for p in pieces]
            for start, end, own_start, own_end in plan_windows(counts, self.max_len - 2):
                ids = [self.tokenizer.cls_id]
                word_index = [-1]
                for w in range(start, end):
                    word_index.append(w if own_start <= w < own_end else -1)
                    word_index.extend([-1] * (counts[w] - 1))
                    ids.extend(pieces[w])
                ids.append(self.tokenizer.sep_id)
                word_index.append(-1)
                wi = np.asarray(word_index, dtype=np.int32)
                labels = None
                if tags is not None:
                    sentence_tags = tags[index]
                    labels = np.full(len(ids), IGNORE_INDEX, dtype=np.int32)
                    first = wi >= 0
                    labels[first] = [label2id[sentence_tags[w]] for w in wi[first]]
                windows.append(Window(index, np.asarray(ids, dtype=np.int32), wi, labels))
        return windows


# ---------------------------------------------------------------- batching


@dataclass
class Batch:
    input_ids: np.ndarray  # [batch, length] int32
    attention_mask: np.ndarray  # [batch, length] int32
    labels: np.ndarray | None  # [batch, length] int32, IGNORE_INDEX on padding
    windows: list[int]  # indices into the window list, row by row


def collate(windows: Sequence[Window], indices: Sequence[int], pad_id: int, length: int | None = None) -> Batch:
    """Stack windows into arrays padded to `length` (default: the longest of them).

    The model functions take any shape without retracing, so training pads to
    the longest window only; `tagging_plan` chooses `length` for inference.
    """
    length = length or max(len(windows[i].input_ids) for i in indices)
    ids = np.full((len(indices), length), pad_id, dtype=np.int32)
    mask = np.zeros((len(indices), length), dtype=np.int32)
    has_labels = windows[indices[0]].labels is not None
    labels = np.full((len(indices), length), IGNORE_INDEX, dtype=np.int32) if has_labels else None
    for row, i in enumerate(indices):
        n = len(windows[i].input_ids)
        ids[row, :n] = windows[i].input_ids
        mask[row, :n] = 1
        if labels is not None:
            labels[row, :n] = windows[i].labels
    return Batch(ids, mask, labels, list(indices))


def batch_plan(
    windows: Sequence[Window], batch_size: int, rng: np.random.Generator | None = None
) -> list[list[int]]:
    """Cut windows, ordered by length, into batches: almost no padding.

    Without `rng`: a stable sort by length (deterministic, for evaluation and
    prediction). With `rng`: windows of equal length are shuffled among
    themselves before the cut, and the batch order is shuffled, so every epoch
    sees new batches while each one stays nearly free of padding (on MIT Movie
    this made training steps 8% faster than padding to multiples of 8: 537.3
    against 580.9 ms, benchmarks/results/2026-11-27-vm-levers.json). Every
    window appears exactly once; only the last batch of the cut may be short.
    """
    if not windows:
        return []
    lengths = np.fromiter((len(w.input_ids) for w in windows), dtype=np.int64, count=len(windows))
    if rng is None:
        order = np.argsort(lengths, kind="stable")
    else:
        order = np.lexsort((rng.permutation(len(windows)), lengths))  # by length, ties in random order
    batches = [order[i : i + batch_size].tolist() for i in range(0, len(order), batch_size)]
    if rng is not None:
        rng.shuffle(batches)
    return batches


def padded_length(length: int, multiple: int = PAD_MULTIPLE) -> int:
    """`length` rounded up to a multiple of `multiple`: the width a window is tagged at."""
    return -(-length // multiple) * multiple


def tagging_plan(windows: Sequence[Window], batch_size: int, multiple: int = PAD_MULTIPLE
                 ) -> list[tuple[int, list[int]]]:
    """Inference batches as (padded length, window indices): windows grouped by `padded_length`.

    Each window is tagged at its own padded length whatever else shares its
    batch, so its scores do not depend on the batch (a server batches whatever
    requests arrive together; `predict` sorts a whole file), and a batch of
    random texts wastes no work padding short ones to the longest. Measured on
    engtest (benchmarks/padding.py, benchmarks/results/2026-12-01-vm-padding.json,
    AMD EPYC, 2 cores): random 64-text groups
    at 336 texts/s against 228 padded to their longest and 399 for the sorted
    file, with scores equal to the sorted file's (34 texts' scores differed
    when padded to the longest).
    """
    groups: dict[int, list[int]] = {}
    for i in np.argsort([len(w.input_ids) for w in windows], kind="stable").tolist():
        groups.setdefault(padded_length(len(windows[i].input_ids), multiple), []).append(i)
    return [(length, members[i : i + batch_size])
            for length, members in groups.items() for i in range(0, len(members), batch_size)]


def merge_windows(
    windows: Sequence[Window], outputs: Sequence[np.ndarray], word_counts: Sequence[int]
) -> list[np.ndarray]:
    """Scatter per-position outputs of each window back to one row per word.

    `outputs[k]` is [len(window k), ...]; the result has, per sentence, an array
    [n_words, ...] filled from the window that owns each word.
    """
    trailing = outputs[0].shape[1:] if outputs else ()
    dtype = outputs[0].dtype if outputs else np.float32
    merged = [np.zeros((n, *trailing), dtype=dtype) for n in word_counts]
    for window, out in zip(windows, outputs):
        first = window.word_index >= 0
        merged[window.sentence][window.word_index[first]] = out[: len(window.word_index)][first]
    return merged


def piece_counter(model: str, max_len: int) -> Callable[[Sequence[Sequence[str]]], list[int]]:
    """Word pieces per sentence with `model`'s tokenizer, as training counts them against `max_len`."""
    from .model import load_tokenizer, resolve_model

    encoder = Encoder(PieceTokenizer.from_transformers(load_tokenizer(resolve_model(model))), max_len)
    return lambda sentences: [sum(len(p) for p in words) for words in encoder.pieces_per_word(sentences)]
