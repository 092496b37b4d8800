"""Tagging: words or raw text in, one tag per word and well-formed entity spans out.

The `Tagger` is shared by training (dev scoring), `evaluate` and `predict`, so
all three see exactly the same windows, batches and decoding.
"""
from __future__ import annotations

import collections
import copy
import itertools
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Sequence

from pathlib import Path

import numpy as np

from ..artifacts.rundir import RunDir
from ..core.choices import DECODERS
from ..core.errors import InputError
from ..data.sentence import DEFAULT_WORDS, WORD_RULES, Word, split_words
from ..data.tags import OUTSIDE, LabelMap, entity_spans, repair_bio
from ..modeling.crf import Transitions
from ..modeling.encoding import (
    Encoder,
    PieceTokenizer,
    collate,
    merge_windows,
    tagging_plan,
)
from .decode import chain_scores, length_groups, stack, viterbi_paths
from .engines import EngineChoice, available, choose_engine, open_forward
from .posterior import Posteriors, independent_chain, log_emission

Progress = Callable[[int, int], None]  # (sentences just finished, total sentences)


CHUNK_TEXTS = 2048  # texts `pipe` tags together: 32 length-sorted batches of 64, a few MB of results


@dataclass(frozen=True)
class TaggedWord:
    """A word of the text (character offsets into it) with its tag and the tag's probability."""

    text: str
    start: int
    end: int
    tag: str
    score: float


@dataclass(frozen=True)
class Entity:
    """An entity span: its type, its text and character offsets, the probability that exactly it is tagged."""

    type: str
    text: str
    start: int
    end: int
    score: float


@dataclass
class Decoded:
    """One sentence decoded: its tags, each word's probability of its tag, each span's probability.

    `outside` is each word's probability of O (the score a word gets when its span is
    left out by `filtered`); `confidence` the probability of the whole tag sequence, as
    decoded (before `filtered`); `dropped` the spans `filtered` left out."""

    tags: list[str]
    scores: list[float]
    span_scores: list[float]  # one per entity_spans(tags) span, in order
    outside: list[float] = field(default_factory=list)
    confidence: float = 1.0
    dropped: int = 0

    def filtered(self, min_score: float) -> "Decoded":
        """These tags with every span scored under `min_score` tagged O (its words scored by P(O))."""
        tags, scores, kept = list(self.tags), list(self.scores), []
        for (_, first, end), score in zip(entity_spans(self.tags), self.span_scores):
            if score >= min_score:
                kept.append(score)
                continue
            for w in range(first, end):
                tags[w], scores[w] = OUTSIDE, self.outside[w]
        return Decoded(tags, scores, kept, self.outside, self.confidence,
                       self.dropped + len(self.span_scores) - len(kept))


@dataclass
class Doc:
    """A tagged text: what `tagger(text)` returns, and one record of `nerctl predict`."""

    text: str
    words: list[TaggedWord]
    entities: list[Entity] = field(default_factory=list)
    gold: list[str] | None = None  # gold tags, when the input was a tagged file
    decoded: Decoded | None = field(default=None, repr=False, compare=False)  # what words and entities came from

    @classmethod
    def of(cls, text: str, words: Sequence[Word], decoded: Decoded, gold: Sequence[str] | None = None) -> "Doc":
        """The Doc of `words` (offsets into `text`) decoded as `decoded`."""
        entities = [Entity(kind, text[words[a].start : words[b - 1].end], words[a].start, words[b - 1].end, score)
                    for (kind, a, b), score in zip(entity_spans(decoded.tags), decoded.span_scores)]
        tagged = [TaggedWord(w.text, w.start, w.end, tag, score)
                  for w, tag, score in zip(words, decoded.tags, decoded.scores)]
        return cls(text, tagged, entities, list(gold) if gold is not None else None, decoded)

    @property
    def tags(self) -> list[str]:
        return [w.tag for w in self.words]

    @property
    def uncertainty(self) -> float:
        """1 - the probability that every word's tag, as decoded, is right: sort texts by it for review."""
        return 1.0 - (self.decoded.confidence if self.decoded is not None else 1.0)

    @property
    def dropped(self) -> int:
        """Entities left out for scoring under the tagger's (or `filtered`'s) min_score."""
        return self.decoded.dropped if self.decoded is not None else 0

    def filtered(self, min_score: float) -> "Doc":
        """This Doc without the entities scored under `min_score` (their words tagged O)."""
        if self.decoded is None or not min_score:
            return self
        words = [Word(w.text, w.start, w.end) for w in self.words]
        return Doc.of(self.text, words, self.decoded.filtered(min_score), self.gold)

    def to_dict(self) -> dict:
        """The JSON record `nerctl predict --format jsonl` writes for this text."""
        out = {
            "text": self.text,
            "uncertainty": round(self.uncertainty, 4),
            "entities": [{"type": e.type, "text": e.text, "start": e.start, "end": e.end, "score": round(e.score, 4)}
                         for e in self.entities],
            "words": [{"word": w.text, "start": w.start, "end": w.end, "tag": w.tag, "score": round(w.score, 4)}
                      for w in self.words],
        }
        if self.gold is not None:
            for word, gold in zip(out["words"], self.gold):
                word["gold"] = gold
        return out


class Tagger:
    """A network with its tokenizer and label map, ready to tag.

    `tagger(text)` gives a Doc; `tagger.pipe(texts)` streams Docs. `forward` is
    one of `engines`' forwards: training's in-memory Keras model, or a finished
    run's model on the engine `from_run` chooses (`nerctl.load` calls it).
    `temperature` divides the word log-probabilities before the scores are
    computed (never before Viterbi: the tags do not depend on it); a run's is
    fitted on its dev split (evaluation/calibration.py). `min_score` tags O
    every span scored under it (`Decoded.filtered`).
    """

    def __init__(self, forward, tokenizer: PieceTokenizer, label_map: LabelMap, max_len: int,
                 batch_size: int = 64, decoder: str = "viterbi", transitions: Transitions | None = None,
                 engine: EngineChoice | None = None, name: str | None = None, temperature: float = 1.0,
                 min_score: float = 0.0, words: str = DEFAULT_WORDS, run: RunDir | None = None):
        if decoder not in DECODERS:
            raise InputError(f"unknown decoder {decoder!r}: choose one of {', '.join(DECODERS)}")
        if forward.num_labels != len(label_map.labels):
            raise InputError(f"the model has {forward.num_labels} labels, the label map {len(label_map.labels)}")
        self._set_scoring(temperature, min_score)
        self.decoder = decoder
        self.transitions = transitions  # a CRF head's learned scores, used by Viterbi
        self.engine = engine  # the engines.EngineChoice that runs `forward` (from_run's choice)
        self.name = name  # the run's name (Label Studio's model_version)
        self.run = run  # the finished run it was loaded from (from_run), for `facts`
        if words not in WORD_RULES:
            raise InputError(f"unknown words rule {words!r}: choose one of {', '.join(WORD_RULES)}")
        self.words = words  # the --words rule raw text is split by (the run's)
        self.forward = forward
        self.label_map = label_map
        self.encoder = Encoder(tokenizer, max_len, label_map)
        self.batch_size = batch_size

    @classmethod
    def from_run(cls, run: RunDir, batch_size: int | None = None, precision: str = "auto",
                 backend: str = "auto", min_score: float = 0.0, folder: Path | None = None,
                 words: str | None = None) -> "Tagger":
        """A finished run's model on the engine `engines.choose_engine` picks (see `self.engine`),
        scoring with the run's fitted temperature (1 for a run without calibration.json), splitting raw
        text by the run's --words rule unless `words` names another.

        `folder`: another model of the run in best/'s format (--refit's selection/), run on Keras."""
        engine = choose_engine("keras" if folder else backend, precision, available(run))
        forward, source = open_forward(engine, run, folder)
        label_map = run.read_labels()
        if forward.num_labels != len(label_map.labels) or forward.label_names not in (None, label_map.labels):
            raise InputError(f"{run.path}: labels.json ({len(label_map.labels)} labels) does not match "
                             f"the model in {source} ({forward.num_labels} labels)")
        config = run.read_config().config
        return cls(forward, PieceTokenizer.from_folder(run.tokenizer), label_map, config.max_len,
                   batch_size or config.eval_batch_size, transitions=Transitions.load(folder or run.best, label_map.labels),
                   engine=engine, name=run.path.name, temperature=run.read_temperature(), min_score=min_score,
                   words=words or config.words, run=run)

    def facts(self) -> dict:
        """What /v1/model and the HTML pages say of this model: its run, labels, types, scores, engine."""
        facts = {"model": self.name, "labels": list(self.label_map.labels), "types": self.label_map.types,
                 "max_len": self.encoder.max_len, "engine": self.engine.to_dict() if self.engine else None,
                 "temperature": self.temperature}
        if self.run is not None:
            summary, saved = self.run.read_summary(), self.run.read_config()
            facts |= {"base_model": saved.config.model,
                      "data": {k: self.run.portable(str(v)) for k, v in saved.resolved.items() if k != "model"},
                      "best_epoch": summary.get("best_epoch"), "best_dev_f1": summary.get("best_dev_f1"),
                      "test_f1": summary.get("test", {}).get("f1")}
        return facts

    def with_transitions(self, transitions: Transitions | None) -> "Tagger":
        """This tagger (the same forward) decoding with other CRF scores: training's dev tagger each epoch."""
        tagger = copy.copy(self)
        tagger.transitions = transitions
        return tagger

    def with_scoring(self, temperature: float | None = None, min_score: float | None = None) -> "Tagger":
        """This tagger (the same forward) with another temperature or min_score (None: keep this one's)."""
        tagger = copy.copy(self)
        tagger._set_scoring(self.temperature if temperature is None else temperature,
                            self.min_score if min_score is None else min_score)
        return tagger

    def _set_scoring(self, temperature: float, min_score: float) -> None:
        """Check and set the temperature and min_score (the constructor's and with_scoring's one rule)."""
        if not 0.0 <= min_score <= 1.0:
            raise InputError(f"min_score must be between 0 and 1, not {min_score}")
        if not temperature > 0:
            raise InputError(f"the temperature must be positive, not {temperature}")
        self.temperature, self.min_score = float(temperature), float(min_score)

    def word_probabilities(self, sentences: Sequence[Sequence[str]], progress: Progress | None = None
                           ) -> list[np.ndarray]:
        """Per sentence, a [words, labels] array of tag probabilities.

        `progress(done, total)` is called after each batch with the sentences it
        finished (a long sentence's windows may sit in several batches) and the
        number of sentences.
        """
        windows = self.encoder.encode(sentences)
        plan = tagging_plan(windows, self.batch_size)
        outputs: list[np.ndarray | None] = [None] * len(windows)
        windows_left = collections.Counter(w.sentence for w in windows)
        for length, indices in plan:
            batch = collate(windows, indices, self.encoder.pad_id, length)
            probs = self.forward(batch.input_ids, batch.attention_mask, len(plan))
            finished = 0
            for row, k in enumerate(batch.windows):
                outputs[k] = probs[row, : len(windows[k].input_ids)]
                windows_left[windows[k].sentence] -= 1
                finished += windows_left[windows[k].sentence] == 0
            if progress:
                progress(finished, len(windows_left))
        return merge_windows(windows, outputs, [len(s) for s in sentences])

    def score_chain(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The (transition, start, final) scores the probabilities are computed under: the chain
        Viterbi decodes with (IOB2 constraints and a CRF head's scores), or, for a softmax head
        or argmax decoding, each word on its own."""
        if self.transitions is not None and self.decoder == "viterbi":
            return chain_scores(self.label_map.labels, self.transitions)
        return independent_chain(len(self.label_map.labels))

    def decode(self, probs: Sequence[np.ndarray]) -> list[Decoded]:
        """Per sentence, the best valid IOB2 tags, each word's probability of its tag and each span's.

        The probabilities are posteriors under `score_chain` (posterior.py), the
        word log-probabilities divided by the temperature: a word's is the
        marginal of its tag, a span's the probability that exactly that span is
        in the tag sequence. Spans under `min_score` are then tagged O. Sentences
        of similar length are decoded together as arrays (decode.length_groups)."""
        out = [Decoded([], [], []) for _ in probs]
        for members in length_groups(probs):
            stacked, lengths = stack([probs[i] for i in members], pad=1.0)  # log 1 = 0 past each end
            for i, decoded in zip(members, self._decode_group(log_emission(stacked), lengths)):
                out[i] = decoded.filtered(self.min_score) if self.min_score else decoded
        return out

    def _decode_group(self, emit: np.ndarray, lengths: np.ndarray) -> list[Decoded]:
        """`decode` of one group of sentences: `emit` their [sentence, position, label] log-probabilities."""
        labels, ids_of = self.label_map.labels, self.label_map.label2id
        chain = self.score_chain()
        if self.decoder == "viterbi":  # valid IOB2 by construction: the chain forbids the rest
            paths = viterbi_paths(emit, lengths, *chain_scores(labels, self.transitions))
        else:
            paths = emit.argmax(axis=-1)
            for row, n in enumerate(lengths.tolist()):
                paths[row, :n] = [ids_of[t] for t in repair_bio([labels[j] for j in paths[row, :n]])]
        group = Posteriors.of(emit / self.temperature, lengths, *chain)
        marginals = group.marginals()
        scores = np.take_along_axis(marginals, paths[:, :, None], axis=2)[:, :, 0].tolist()
        outside = marginals[:, :, ids_of[OUTSIDE]].tolist()
        confidence = group.path_probabilities(paths, *chain).tolist()
        tags = [[labels[j] for j in path[:n]] for path, n in zip(paths.tolist(), lengths.tolist())]
        spans = [(row, a, b, ids_of["B-" + kind], ids_of["I-" + kind])
                 for row, row_tags in enumerate(tags) for kind, a, b in entity_spans(row_tags)]
        span_scores: list[list[float]] = [[] for _ in tags]
        if spans:
            rows, *rest = (np.array(column) for column in zip(*spans))
            for row, score in zip(rows.tolist(), group.span_probabilities(rows, *rest, chain[0], chain[2]).tolist()):
                span_scores[row].append(score)
        return [Decoded(t, s[:n], p, o[:n], c) for t, s, p, o, c, n in
                zip(tags, scores, span_scores, outside, confidence, lengths.tolist())]

    def tags_and_scores(self, sentences: Sequence[Sequence[str]], progress: Progress | None = None
                        ) -> list[tuple[list[str], list[float]]]:
        """Tags (valid IOB2) and their probabilities for each sentence's words."""
        return [(d.tags, d.scores) for d in self.decode(self.word_probabilities(sentences, progress))]

    def tag_words(self, texts: Sequence[str], word_lists: Sequence[list[Word]], gold=None,
                  progress: Progress | None = None) -> list[Doc]:
        """Tag pre-split words; `texts` are what their offsets point into."""
        decoded = self.decode(self.word_probabilities([[w.text for w in words] for words in word_lists], progress))
        return [Doc.of(text, words, d, gold[i] if gold else None)
                for i, (text, words, d) in enumerate(zip(texts, word_lists, decoded))]

    def tag_texts(self, texts: Sequence[str], progress: Progress | None = None) -> list[Doc]:
        """Tag raw strings together, split by the tagger's --words rule; offsets refer to each original string."""
        return self.tag_words(texts, [split_words(t, self.words) for t in texts], progress=progress)

    def __call__(self, text: str) -> Doc:
        """Tag one text."""
        return self.tag_texts([text])[0]

    def tag_chunks(self, texts: Iterable[str], chunk_size: int = CHUNK_TEXTS) -> Iterator[list[Doc]]:
        """Tag `texts` (any iterable, read lazily) `chunk_size` at a time; yield each chunk's Docs in order.

        Memory is bounded by the chunk, not the input. Within a chunk texts are
        sorted by length into batches, so chunks should hold many batches.
        """
        texts = iter(texts)
        while chunk := list(itertools.islice(texts, chunk_size)):
            yield self.tag_texts(chunk)

    def pipe(self, texts: Iterable[str], batch_size: int | None = None, chunk_size: int = CHUNK_TEXTS
             ) -> Iterator[Doc]:
        """Tag a stream of texts, one Doc per text in order, reading the input a chunk at a time."""
        tagger = self
        if batch_size is not None and batch_size != self.batch_size:
            tagger = copy.copy(self)
            tagger.batch_size = batch_size
        for docs in tagger.tag_chunks(texts, chunk_size):
            yield from docs
