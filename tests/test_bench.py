"""benchmarks/bench.py's and ab.py's own logic: what they measure in turns, how they count, what they keep."""
import hashlib
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import _common  # noqa: E402  (benchmarks/ is not a package: its scripts run with it first on sys.path)
import bench  # noqa: E402


def test_epochs_within_counts_the_fixed_part_once():
    # 100 s of start-up, scoring and export besides 3 epochs of 60 s (the first 80 s: tracing)
    train = {"wall_s": 300.0, "epoch_train_s": [80.0, 60.0, 60.0]}
    assert bench.epochs_within(train, 300.0) == 3
    assert bench.epochs_within(train, 299.0) == 2
    assert bench.epochs_within(train, 420.0) == 5
    assert bench.epochs_within(train, 10.0) == 1  # never none


def test_results_of_the_same_day_are_never_replaced(tmp_path):
    record = _common.new_result(figure=1)
    first = _common.save_result(record, tmp_path)
    second = _common.save_result({**record, "figure": 2}, tmp_path)
    third = _common.save_result(record, tmp_path, "-incomplete")
    assert first.name == f"{record['date']}-{record['host']}.json"
    assert second.name == f"{record['date']}-{record['host']}-2.json"
    assert json.loads(first.read_text())["figure"] == 1 and json.loads(second.read_text())["figure"] == 2
    assert third.name.endswith("-incomplete.json")


@pytest.fixture
def timed(monkeypatch, tmp_path):
    """bench's measurements replaced by a clock that counts calls: each call's rate is its place in the order."""
    calls = []

    def rate(what):
        calls.append(what)
        return float(len(calls))

    monkeypatch.setattr(bench, "in_process_rate", lambda run, texts: {"rate": rate(run.name), "engine": {"e": 1}})
    monkeypatch.setattr(bench, "measured", lambda cmd: {"wall_s": 10.0 / rate("command")})
    monkeypatch.setattr(bench, "peer_predict", lambda model, test: rate("peer"))
    monkeypatch.setattr(bench, "spacy_predict", lambda model, test: {
        mode: {"sentences_per_s": rate(f"spacy-{mode}")} for mode in ("texts", "texts_n_process2", "docs")})
    (tmp_path / bench.PEER_MODEL).mkdir()
    (tmp_path / "spacy" / "output" / "model-best").mkdir(parents=True)
    texts = tmp_path / "engtest.txt"
    texts.write_text("a\nb\n")
    return calls, texts


def test_side_by_side_times_every_engine_once_a_round(timed, tmp_path):
    calls, texts = timed
    runs = {"bench": tmp_path / "bench", "fast": tmp_path / "fast"}
    got = bench.side_by_side(tmp_path, texts, tmp_path / "engtest.bio", runs, rounds=3)
    round_of_calls = ["bench", "fast", "command", "peer", "spacy-texts", "spacy-texts_n_process2", "spacy-docs"]
    assert calls == round_of_calls * 3  # in turns: no engine's runs are bunched at one time of the bench
    rounds = got["sentences_per_s_rounds"]
    assert rounds["peer_pipeline"] == [4.0, 11.0, 18.0] and got["sentences_per_s"]["peer_pipeline"] == 11.0
    assert rounds["bench_command"] == [round(2 / (10.0 / n), 1) for n in (3, 10, 17)]  # 2 lines / wall
    assert got["sentences_per_s"]["fast"] == 9.0 and got["engines"] == {"bench": {"e": 1}, "fast": {"e": 1}}


def test_the_table_sets_each_in_turns_rate_against_the_peer_in_turns(timed, tmp_path):
    side = bench.side_by_side(tmp_path, timed[1], tmp_path / "engtest.bio", {"bench": tmp_path / "bench"}, rounds=1)
    side["sentences_per_s"] |= {"bench": 300.0, "peer_pipeline": 100.0, "bench_command": 250.0, "spacy_texts": 600.0}
    n = {"train": {"epochs": 3, "sentences_per_s_steady": 1, "wall_s": 1, "test_f1": 1, "peak_rss_mib": 1},
         "predict": {"in_process_sentences_per_s": 1, "in_process_tensorflow_sentences_per_s": 1,
                     "command_sentences_per_s": 1, "peak_rss_mib": 1, "single_sentence_wall_s": 1},
         "help_wall_s": 1, "import_tensorflow_wall_s": 1}
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ")[1:] for line in
            bench.table({"nerctl": n, "side_by_side": side}).splitlines()}
    in_turns = rows["in turns (1 rounds, medians): the 3-epoch run above predict sentences/s (in-process)"]
    assert in_turns[:5] == ["300.0", "100.0", "3.0", "600.0", "0.5"]
    command = rows["in turns: predict --file sentences/s (whole command, the run above)"]
    assert command[:3] == ["250.0", "100.0", "2.5"]


def test_a_failed_stage_keeps_what_was_measured(monkeypatch, tmp_path):
    import nerctl.data.datasets

    keep, out = tmp_path / "work", tmp_path / "results"
    monkeypatch.setattr(nerctl.data.datasets, "download", lambda name, mirror=None: {
        "engtrain.bio": tmp_path / "train.bio", "engtest.bio": tmp_path / "test.bio"})
    monkeypatch.setattr(bench, "nerctl_figures", lambda args, workdir, data: {"train": {"lr": 1e-4, "batch_size": 8}})

    def peer_fails(*args):
        raise RuntimeError("the peer's venv could not be made")

    monkeypatch.setattr(bench, "peer_figures", peer_fails)
    monkeypatch.setattr(sys, "argv", ["bench.py", "--keep", str(keep), "--out", str(out)])
    with pytest.raises(RuntimeError):
        bench.main()
    [written] = out.iterdir()
    result = json.loads(written.read_text())
    assert written.name.endswith("-incomplete.json") and result["nerctl"]["train"]["lr"] == 1e-4
    assert result["incomplete"] == "RuntimeError: the peer's venv could not be made"
    assert keep.is_dir()  # --keep: the work folder stays for a look


def test_ab_runs_the_other_checkouts_nerctl_in_front_of_the_editable_install(tmp_path):
    """benchmarks/ab.py's launcher: the base tree's package answers `import nerctl`, not this checkout's."""
    import subprocess

    import ab

    (tmp_path / "nerctl").mkdir()
    (tmp_path / "nerctl" / "__init__.py").write_text("WHERE = 'base tree'\n")
    code = ab._PRELUDE.format(tree=str(tmp_path)) + "import nerctl; print(nerctl.WHERE, nerctl.__file__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split()[:2] == ["base", "tree"] and str(tmp_path) in out


def test_ab_ratios_are_taken_round_by_round(tmp_path):
    import ab

    rates = {"base": {"in_process": [100.0, 50.0, 80.0], "command": [10.0, 20.0, 10.0]},
             "head": {"in_process": [110.0, 60.0, 80.0], "command": [11.0, 20.0, 12.0]}}
    got = ab.summary({"rates": rates})
    assert got["in_process_ratios"] == [1.1, 1.2, 1.0] and got["in_process_ratio_median"] == 1.1
    assert got["command_ratios"] == [1.1, 1.0, 1.2] and got["command_ratio_median"] == 1.1
    assert got["median_rate"]["base"]["in_process"] == 80.0
    jsonl = tmp_path / "out.jsonl"
    jsonl.write_text('{"words": [{"tag": "O"}, {"tag": "B-X"}]}\n{"words": []}\n')
    tags = [["O", "B-X"], []]  # what bench.py's in-process figure digests: each result's tags
    assert ab.tags_digest(jsonl) == hashlib.sha256(json.dumps(tags).encode()).hexdigest()
