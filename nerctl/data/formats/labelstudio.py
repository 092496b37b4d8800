"""Label Studio: reading its JSON and JSON-MIN exports, writing tasks (convert) and pre-annotations (predict).

JSON: a list of tasks {"id", "data": {"text"}, "annotations": [{"result": [...], "was_cancelled"}]};
each task's latest non-cancelled annotation is read, its `labels` results
(value.start, value.end, value.labels) are the spans. JSON-MIN: a list of
{"id", "text", "<from_name>": [{"start", "end", "text", "labels"}]}. Errors
name the file and the task id.

A project's labeling config (XML) says where the text and the spans live:
`parse_labeling_config` finds its `<Labels>` control over a `<Text>` object,
which gives the results' from_name and to_name, the task's data key
(`value="$utterance"`: data.utterance) and the entity types.
"""
from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

from ...core.errors import InputError
from ...core.progress import Warn
from ..align import (
    CharSpan,
    Tally,
    aligned_sentence,
    char_spans,
    sentence_words,
    tokens_field,
)
from ..sentence import DEFAULT_WORDS, Sentence
from ..tags import TYPE_RULE, is_entity_type

if TYPE_CHECKING:
    from . import ReadOptions, Source


# The names in the labeling config nerctl writes: <Labels name="label" toName="text"> over <Text name="text" value="$text">.
FROM_NAME, TO_NAME = "label", "text"


@dataclass(frozen=True)
class LabelingConfig:
    """What a labeling config says about named-entity spans: where they go and which types exist."""

    from_name: str  # the <Labels> control's name
    to_name: str  # the <Text> object's name
    text_key: str  # the task's data key of the text ("text" for value="$text")
    labels: tuple[str, ...]  # the <Label value="..."> entity types, in the config's order

    def check_types(self, types: Sequence[str]) -> None:
        """InputError naming the mismatch unless the config's labels are exactly `types` (a model's)."""
        missing, unknown = sorted(set(types) - set(self.labels)), sorted(set(self.labels) - set(types))
        problems = ([f"the model predicts {', '.join(missing)}, which the labeling config has no label for"]
                    if missing else []) + (
            [f"the labeling config has label(s) {', '.join(unknown)} the model was never trained on"] if unknown else [])
        if problems:
            raise InputError(f"<Labels name=\"{self.from_name}\">: " + "; ".join(problems))


def parse_labeling_config(xml: str) -> LabelingConfig:
    """The LabelingConfig of a project's labeling config; InputError saying why when nerctl cannot serve it."""
    try:  # expat >= 2.4 bounds entity expansion, and ElementTree resolves no external entity
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError as err:
        raise InputError(f"the labeling config is not valid XML ({err})") from None
    texts = {e.get("name"): e.get("value", "") for e in root.iter("Text") if e.get("name")}
    controls = [e for e in root.iter("Labels") if e.get("toName") in texts]
    if len(controls) != 1:
        found = "no <Labels> control" if not controls else f"{len(controls)} <Labels> controls"
        raise InputError(f"the labeling config has {found} over a <Text> object; nerctl serves exactly one "
                         '(<Labels name="label" toName="text"> over <Text name="text" value="$text"/>)')
    control = controls[0]
    to_name = control.get("toName")
    value = texts[to_name]
    if not value.startswith("$") or len(value) < 2:
        raise InputError(f'<Text name="{to_name}">: value="{value}" is not a task field ($name)')
    labels = tuple(label.get("value") for label in control.iter("Label") if label.get("value"))
    bad = [label for label in labels if not is_entity_type(label)]
    if not labels or bad:
        raise InputError(f'<Labels name="{control.get("name")}">: ' + (
            f"label(s) {', '.join(bad)} are not entity types ({TYPE_RULE})" if bad else "no <Label value=...>"))
    return LabelingConfig(control.get("name") or FROM_NAME, to_name, value[1:], labels)


def detect(source: "Source") -> bool:
    """A JSON list of objects (or an empty one); a CoNLL word may be "[" too, but then a tag follows."""
    head = source.text.lstrip()
    return head.startswith("[") and head[1:].lstrip()[:1] in ("{", "]")


def read(source: "Source", options: "ReadOptions") -> list[Sentence]:
    return parse_labelstudio(source.text, source.path, options.misaligned, options.warn, options.tally,
                             words=options.words)


def write(sentences: Sequence[Sentence], scheme: str, warn: Warn) -> str:
    """An annotated task a line: a valid JSON list that still diffs and greps line by line."""
    tasks = [json.dumps(task(s, i), ensure_ascii=False) for i, s in enumerate(sentences, 1)]
    return "[\n" + ",\n".join(tasks) + "\n]\n"


def parse_labelstudio(text: str, path: str, misaligned: str = "error", warn: Warn | None = None,
                      tally: Tally | None = None, text_key: str = "text", words: str = DEFAULT_WORDS
                      ) -> list[Sentence]:
    """The sentences of a Label Studio export's text; `warn` hears what was skipped or changed, `tally` counts it.

    `text_key`: the task field holding the text (a LabelingConfig's); `words`: the --words rule."""
    try:
        tasks = json.loads(text)
    except ValueError as err:
        raise InputError(f"{path}:{getattr(err, 'lineno', 1)}: not valid JSON ({getattr(err, 'msg', err)})") from None
    if not isinstance(tasks, list):
        raise InputError(f"{path}: expected a list of tasks (a Label Studio JSON or JSON-MIN export)")
    tally, sentences = tally if tally is not None else Tally(), []
    for index, task in enumerate(tasks):
        task_id = task.get("id", index + 1) if isinstance(task, dict) else index + 1
        where = f"{path}: task {task_id}"
        if not isinstance(task, dict):
            raise InputError(f"{where}: expected a task object")
        found = _full_task(task, where, text_key) if "data" in task else _min_task(task, where, text_key)
        if found is None:
            tally.unannotated += 1
            continue
        task_text, tokens, spans = found
        line = task_id if isinstance(task_id, int) else index + 1
        sentence = aligned_sentence(task_text, tokens, spans, path, line, where, misaligned, tally, words)
        if sentence is not None:
            sentences.append(sentence)
    if not sentences:
        raise InputError(f"{path}: no annotated task with a word found")
    tally.report(path, misaligned, warn)
    return sentences


def _full_task(task: dict, where: str, text_key: str) -> tuple[str, Any, list[CharSpan]] | None:
    """(text, tokens, spans) of a JSON-export task's latest non-cancelled annotation; None without one."""
    data = task["data"]
    if not isinstance(data, dict):
        raise InputError(f'{where}: "data" must be an object')
    annotations = [a for a in task.get("annotations") or [] if isinstance(a, dict) and not a.get("was_cancelled")]
    if not annotations:
        return None
    # Timestamps are ISO 8601 strings, which sort as text; the id breaks ties.
    latest = max(annotations, key=lambda a: (str(a.get("updated_at") or a.get("created_at") or ""),
                                               a.get("id") if isinstance(a.get("id"), int) else 0))
    results = [r for r in latest.get("result") or [] if isinstance(r, dict) and r.get("type") == "labels"]
    return (_task_text(data, where, text_key), data.get("tokens"),
            [s for r in results for s in _spans(r.get("value"), where)])


def _min_task(task: dict, where: str, text_key: str) -> tuple[str, Any, list[CharSpan]]:
    """(text, tokens, spans) of a JSON-MIN task: its span lists are the values that hold `labels` items."""
    lists = [v for v in task.values() if isinstance(v, list) and v and all(isinstance(i, dict) and "labels" in i
                                                                            for i in v)]
    return (_task_text(task, where, text_key), task.get("tokens"),
            [s for v in lists for item in v for s in _spans(item, where)])


def _task_text(data: dict, where: str, key: str) -> str:
    if isinstance(data.get(key), str):
        return data[key]
    raise InputError(f'{where}: no "{key}" field: nerctl reads tasks whose text is data.{key}')


def _spans(value: Any, where: str) -> list[CharSpan]:
    """One span per label of a `labels` result value {"start", "end", "text", "labels"}."""
    ok = isinstance(value, dict) and all(isinstance(value.get(k), int) and not isinstance(value.get(k), bool)
                                         for k in ("start", "end"))
    labels = value.get("labels") if ok else None
    if not (isinstance(labels, list) and labels and all(is_entity_type(label) for label in labels)):
        raise InputError(f"{where}: result {json.dumps(value)} needs integer start and end and labels "
                         f"{TYPE_RULE}")
    text = value.get("text") if isinstance(value.get("text"), str) else None
    return [CharSpan(value["start"], value["end"], label, text) for label in labels]


def result(start: int, end: int, text: str, label: str, score: float | None = None, from_name: str = FROM_NAME,
           to_name: str = TO_NAME) -> dict:
    """One `labels` result, as Label Studio exports and imports it."""
    out: dict[str, Any] = {"from_name": from_name, "to_name": to_name, "type": "labels",
                           "value": {"start": start, "end": end, "text": text, "labels": [label]}}
    if score is not None:
        out["score"] = score
    return out


def task(sentence: Sentence, task_id: int) -> dict:
    """A sentence as an annotated task (data.tokens only where the splitter would give other words)."""
    text, words = sentence_words(sentence)
    data: dict[str, Any] = {"text": text}
    tokens = tokens_field(text, words)
    if tokens is not None:
        data["tokens"] = tokens
    spans = [result(start, end, text[start:end], kind) for start, end, kind in char_spans(words, sentence.tags)]
    return {"id": task_id, "data": data, "annotations": [{"result": spans, "was_cancelled": False}]}


