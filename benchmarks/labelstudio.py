#!/usr/bin/env python3
"""The Label Studio loop's learning curve: dev F1 of each version as a project's annotations grow.

    .venv/bin/python benchmarks/labelstudio.py [--steps 100 200 400 800]   (needs `make label-studio`)

A real Label Studio server (its venv from `make label-studio`) and `nerctl serve --label-studio`, both
on 127.0.0.1. The served start model is the default recipe (MiniLM, configs/mitmovie.toml) trained on
the first MIT Movie engtrain sentences that hold every entity type once. A project gets engtrain's
next sentences as annotated tasks, in steps; after each step Label Studio's "Start training" (its
/api/ml/ID/train) makes the backend train a version. Per version: the annotated tasks, its F1 on the
project's held-out share (and the served model's on the same share: the gate), whether it went live,
and its strict F1 on all of engtest (`nerctl evaluate`, a fixed yardstick the loop never sees).
Writes benchmarks/results/<date>-<host>-labelstudio.json.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO, cpu_model, engtest, new_result, save_result

sys.path.insert(0, str(REPO / "tests"))
KEY = "benchmark-backend-key"


def engtrain() -> Path:
    return engtest().with_name("engtrain.bio")


def first_covering(sentences) -> int:
    """How many leading sentences hold every entity type at least once."""
    from nerctl.data.tags import entity_type

    every = {entity_type(t) for s in sentences for t in s.tags} - {"O"}
    seen: set[str] = set()
    for i, s in enumerate(sentences, 1):
        seen |= {entity_type(t) for t in s.tags} - {"O"}
        if seen == every:
            return i
    return len(sentences)


def task(sentence) -> dict:
    """The sentence as an annotated Label Studio task (nerctl's writer; Label Studio numbers tasks itself)."""
    from nerctl.data.formats.labelstudio import task as annotated

    return {k: v for k, v in annotated(sentence, 0).items() if k != "id"}


def wait_for(backend, versions: int, timeout_s: float = 1800) -> dict:
    basic = {"Authorization": "Basic " + base64.b64encode(f"labelstudio:{KEY}".encode()).decode()}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        answer = backend.request("GET", "/versions", headers=basic)[1]
        if len(answer["details"]) >= versions and answer["training"] is None:
            return answer
        time.sleep(5)
    raise SystemExit(f"no version {versions} after {timeout_s} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[100, 200, 400, 800])
    args = parser.parse_args()
    from labelstudio_server import LabelStudio
    from test_serve import Server

    from nerctl.data.formats import read_corpus
    from nerctl.data.formats.bio import writer
    from nerctl.data.tags import entity_type

    work = Path(tempfile.mkdtemp(prefix="nerctl-ls-bench-"))
    sentences = read_corpus(engtrain(), warn=lambda message: None)
    start = first_covering(sentences)
    (work / "start.bio").write_text(writer("mit")(sentences[:start], "iob2", lambda m: None), encoding="utf-8")
    started = time.monotonic()
    subprocess.run([str(REPO / ".venv/bin/nerctl"), "train", "--config", str(REPO / "configs/mitmovie.toml"),
                    "--train-file", str(work / "start.bio"), "--run-dir", str(work / "runs" / "start")], check=True,
                   stdout=subprocess.DEVNULL)
    types = sorted({entity_type(t) for s in sentences for t in s.tags} - {"O"})
    labels = "".join(f'<Label value="{t}"/>' for t in types)
    config = f'<View><Labels name="label" toName="text">{labels}</Labels><Text name="text" value="$text"/></View>'
    (work / "ls").mkdir()
    studio = LabelStudio(work / "ls")
    backend = Server(work / "runs" / "start", "--label-studio", "--min-annotations", "50",
                     env={"NERCTL_API_KEY": KEY, "LABEL_STUDIO_URL": studio.url, "LABEL_STUDIO_API_KEY": studio.token})
    rows = []
    try:
        _, project = studio.api("POST", "/api/projects", {"title": "MIT Movie", "label_config": config})
        _, ml = studio.api("POST", "/api/ml", {"url": backend.url, "project": project["id"], "title": "nerctl",
                                               "auth_method": "BASIC_AUTH", "basic_auth_user": "labelstudio",
                                               "basic_auth_pass": KEY})
        pool, imported = sentences[start:], 0
        for k, step in enumerate(args.steps, 1):
            studio.api("POST", f"/api/projects/{project['id']}/import",
                       [task(s) for s in pool[imported:step]])
            imported = step
            studio.api("POST", f"/api/ml/{ml['id']}/train", {})
            version = wait_for(backend, k)["details"][-1]
            scored = subprocess.run([str(REPO / ".venv/bin/nerctl"), "evaluate", str(work / "runs" / version["name"]),
                                     "--file", str(engtest()), "--json"], check=True, capture_output=True, text=True)
            row = {**version, "engtest_f1": json.loads(scored.stdout)["f1"], "minutes": round(
                (time.monotonic() - started) / 60, 1)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    finally:
        backend.stop()
        studio.stop()
    result = new_result(cpu=cpu_model(), start_sentences=start, steps=args.steps, versions=rows,
                        recipe="configs/mitmovie.toml", work=str(work))
    print(save_result(result, REPO / "benchmarks" / "results", "-labelstudio"))


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
