"""`nerctl evaluate --errors N --format html`: the worst sentences as a page, gold spans beside predicted.

The page is inference/html.py's; each sentence becomes a record whose text is its
words joined by spaces, with its gold spans ("gold_entities") and predicted ones
("entities") as character offsets into that text, as a prediction's are.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ..data.tags import entity_spans
from ..inference.html import static_page


def _entities(words: Sequence[str], tags: Sequence[str], starts: list[int]) -> list[dict]:
    return [{"type": kind, "text": " ".join(words[a:b]), "start": starts[a], "end": starts[b - 1] + len(words[b - 1])}
            for kind, a, b in entity_spans(tags)]


def error_record(item: dict) -> dict:
    """An `evaluate --json` 'worst' item as a page record (text, gold and predicted spans, where it is)."""
    words, starts, at = item["words"], [], 0
    for word in words:
        starts.append(at)
        at += len(word) + 1
    return {"text": " ".join(words), "gold_entities": _entities(words, item["gold"], starts),
            "entities": _entities(words, item["pred"], starts), "errors": item["errors"],
            "source": Path(item["source"]).name if item["source"] else None, "line": item["line"]}


def errors_page(metrics: dict, facts: dict, where: str) -> str:
    """The page of `metrics['worst']` (evaluate's metrics with worst=N); `facts`: the tagger's."""
    scored = f"{where}: F1 {metrics['f1']:.4f}, {len(metrics['worst'])} worst sentence(s)"
    facts = {**facts, "evaluation": scored}
    title = f"nerctl evaluate: {facts.get('model') or ''} on {where}"
    config = {"facts": facts, "types": facts.get("types", [])}
    return "".join(static_page(title, config, [[error_record(item) for item in metrics["worst"]]]))
