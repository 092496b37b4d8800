"""Scores in use: the run's fitted temperature, --min-score, each text's uncertainty, calibration figures."""
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from nerctl.artifacts.rundir import RunDir
from nerctl.cli import app
from nerctl.data.formats.bio import read_bio
from nerctl.data.tags import entity_spans
from nerctl.inference.posterior import posteriors
from nerctl.inference.tagger import Tagger

TEXTS = ["have you seen the dark knight", "who directed jaws", "show me films with tom hanks from the 1980s",
         "is titanic a drama movie"]
runner = CliRunner()


@pytest.fixture(scope="module")
def tagger(trained_run):
    return Tagger.from_run(RunDir(trained_run))


@pytest.fixture(scope="module")
def probs(tagger, bio_files):
    return tagger.word_probabilities([s.words for s in read_bio(bio_files["test"])])


def test_training_fits_the_temperature_on_dev_and_every_engine_scores_with_it(trained_run, bio_files):
    record = json.loads((trained_run / "calibration.json").read_text())
    summary = json.loads((trained_run / "summary.json").read_text())
    assert summary["calibration"] == record and record["fitted_on"] == len(read_bio(bio_files["dev"]))
    assert record["model"] == "best/" and record["engine"] == summary["test"]["engine"]
    assert 0.25 <= record["temperature"] <= 4.0
    assert record["nll_after"] <= record["nll_before"] + 1e-6  # the fit lowers the dev NLL (or T=1 was best)
    probs = Tagger.from_run(RunDir(trained_run)).word_probabilities([s.words for s in read_bio(bio_files["test"])])
    decoded = [Tagger.from_run(RunDir(trained_run), backend=backend).decode(probs) for backend in ("keras", "litert")]
    assert decoded[0] == decoded[1]  # the same emissions give the same scores on every engine
    test = summary["test"]["calibration"]
    assert 0.0 <= test["ece"] <= 1.0 and sum(b["spans"] for b in test["bins"]) == test["spans"] > 0


def test_the_temperature_changes_the_scores_never_the_tags(tagger, probs):
    """At T the scores are the posteriors of the log-probabilities divided by T, whichever engine made them."""
    sharp, soft = tagger.with_scoring(temperature=1.0).decode(probs), tagger.with_scoring(temperature=3.0).decode(probs)
    assert [d.tags for d in sharp] == [d.tags for d in soft]
    assert np.mean([s for d in soft for s in d.scores]) < np.mean([s for d in sharp for s in d.scores])
    chain, ids = tagger.score_chain(), tagger.label_map.label2id
    emit = [np.log(np.maximum(p, 1e-12)) / 3.0 for p in probs]
    for d, posterior in zip(soft, posteriors(emit, *chain)):
        path = [ids[t] for t in d.tags]
        assert d.scores == pytest.approx(posterior.marginals[np.arange(len(path)), path].tolist())
        assert d.confidence == pytest.approx(posterior.path_probability(path, *chain))


def test_min_score_tags_o_the_spans_under_it_and_scores_their_words_by_p_o(tagger, probs):
    full = tagger.decode(probs)
    cut = float(np.median([s for d in full for s in d.span_scores]))
    kept = tagger.with_scoring(min_score=cut).decode(probs)
    for a, b in zip(full, kept):
        assert entity_spans(b.tags) == [s for s, p in zip(entity_spans(a.tags), a.span_scores) if p >= cut]
        assert b.span_scores == [p for p in a.span_scores if p >= cut]
        assert b.dropped == len(a.span_scores) - len(b.span_scores)
        assert b.scores == [a.scores[w] if ta == tb else a.outside[w] for w, (ta, tb) in enumerate(zip(a.tags, b.tags))]
        assert b.confidence == a.confidence  # the uncertainty is the model's, not the filter's
    assert sum(d.dropped for d in kept) > 0


def test_a_docs_filtered_equals_tagging_with_that_min_score(tagger):
    docs = tagger.tag_texts(TEXTS)
    cut = float(np.median([e.score for d in docs for e in d.entities]))
    assert [d.filtered(cut).to_dict() for d in docs] == [d.to_dict() for d in tagger.with_scoring(min_score=cut).tag_texts(TEXTS)]
    assert all(e.score >= cut for d in docs for e in d.filtered(cut).entities)


def test_each_record_carries_its_uncertainty_and_label_studio_sorts_by_its_complement(trained_run, tagger):
    from nerctl.inference.output import prediction_task

    for doc in tagger.tag_texts(TEXTS):
        record = doc.to_dict()
        assert record["uncertainty"] == round(1 - doc.decoded.confidence, 4) and 0 <= record["uncertainty"] <= 1
        assert prediction_task(doc, "v1")["predictions"][0]["score"] == round(1 - doc.uncertainty, 4)
    printed = runner.invoke(app, ["predict", "--run", str(trained_run), "--format", "jsonl", *TEXTS])
    assert [json.loads(line)["uncertainty"] for line in printed.stdout.splitlines()] == [
        d.to_dict()["uncertainty"] for d in tagger.tag_texts(TEXTS)]


def test_predict_min_score_says_on_stderr_how_many_entities_it_left_out(trained_run):
    def entities(*options):
        result = runner.invoke(app, ["predict", "--run", str(trained_run), "--format", "jsonl", *options, *TEXTS])
        assert result.exit_code == 0, result.stderr
        return [e for line in result.stdout.splitlines() for e in json.loads(line)["entities"]], result.stderr

    everything, _ = entities()
    cut = float(np.median([e["score"] for e in everything]))
    kept, stderr = entities("--min-score", f"{cut}")
    assert kept == [e for e in everything if e["score"] >= cut] and len(kept) < len(everything)
    assert f"{len(everything) - len(kept)} entities scored under --min-score {cut:g} left out" in stderr
    bad = runner.invoke(app, ["predict", "--run", str(trained_run), "--min-score", "1.5", "x"])
    assert bad.exit_code == 2 and "--min-score" in bad.stderr


def test_evaluate_shows_precision_and_recall_at_min_scores_that_evaluate_min_score_reproduces(trained_run, bio_files):
    def evaluate(*options):
        result = runner.invoke(app, ["evaluate", str(trained_run), "--file", str(bio_files["test"]), *options])
        assert result.exit_code == 0, result.stderr
        return result.stdout

    plain = json.loads(evaluate("--json"))
    rows = plain["calibration"]["thresholds"]
    assert [r["min_score"] for r in rows] == sorted(r["min_score"] for r in rows)
    assert all(a["spans"] >= b["spans"] for a, b in zip(rows, rows[1:]))  # a higher bar keeps fewer spans
    for row in rows[:2]:
        cut = json.loads(evaluate("--json", "--min-score", str(row["min_score"])))
        assert (cut["precision"], cut["recall"]) == pytest.approx((row["precision"], row["recall"]))
    table = evaluate()
    assert "calibration error (ECE)" in table and "--min-score" in table


def test_calibrate_refits_a_runs_temperature_as_training_did_and_on_a_held_out_file(trained_run, bio_files, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    trained = json.loads((run / "calibration.json").read_text())
    (run / "calibration.json").unlink()
    assert Tagger.from_run(RunDir(run)).temperature == 1.0  # a run from before calibration: raw posteriors
    result = runner.invoke(app, ["calibrate", str(run), "--json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == trained == json.loads((run / "calibration.json").read_text())
    result = runner.invoke(app, ["calibrate", str(run), "--file", str(bio_files["test"])])
    assert result.exit_code == 0 and result.stdout.startswith("temperature ") and "span ECE" in result.stdout
    assert json.loads((run / "calibration.json").read_text())["fitted_on"] == len(read_bio(bio_files["test"]))
    other = tmp_path / "other.bio"
    other.write_text("see\tO\nparis\tB-PLACE\n\n")
    result = runner.invoke(app, ["calibrate", str(run), "--file", str(other)])
    assert result.exit_code == 2 and "B-PLACE" in result.stderr
