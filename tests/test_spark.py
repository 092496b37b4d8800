"""nerctl on Apache Spark: the records equal predict's, in local mode and on a standalone cluster of
127.0.0.1, with errors told on the driver before any task runs."""
import json
import os
import sys

import pytest

from typer.testing import CliRunner

from nerctl.cli import app

pytestmark = pytest.mark.spark
runner = CliRunner()

TEXTS = ["who directed jaws", "show me films with tom hanks from the 1980s", "", "have you seen the dark knight",
         "did steven spielberg make titanic in 1990 ?", "list comedy films directed by james cameron",
         " ".join(["is the godfather a drama movie"] * 12)]  # longer than the tiny model's window: windowed


def predict_records(run, texts) -> list[dict]:
    """`nerctl predict --format jsonl`'s records of `texts`, the reference every Spark record must equal."""
    result = runner.invoke(app, ["predict", "--run", str(run), "--format", "jsonl", "-"],
                           input="".join(t + "\n" for t in texts))
    assert result.exit_code == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.fixture(scope="module")
def local_spark():
    """A local[2] session bound to 127.0.0.1, as `nerctl spark` makes one."""
    from nerctl.spark.job import session

    spark = session("local[2]")
    yield spark
    spark.stop()


def as_records(rows, words: bool = True) -> list[dict]:
    return [{"entities": r["entities"], **({"words": r["words"]} if words else {})}
            for r in (row.asDict(recursive=True) for row in rows)]


def test_local_mode_tags_every_text_as_predict_does(local_spark, trained_run):
    from nerctl.spark import tag

    frame = local_spark.createDataFrame([(i, t) for i, t in enumerate(TEXTS)] + [(len(TEXTS), None)],
                                        "id int, text string").repartition(3)
    rows = sorted(tag(frame, "text", run=trained_run, words=True).collect(), key=lambda r: r["id"])
    expected = predict_records(trained_run, TEXTS)
    assert as_records(rows[:-1]) == [{"entities": r["entities"], "words": r["words"]} for r in expected]
    assert rows[-1]["text"] is None and rows[-1]["entities"] == [] and rows[-1]["words"] == []
    assert any(r["entities"] for r in rows)  # the fixture run finds entities: the comparison is not all-empty
    assert local_spark.conf.get("spark.driver.host") == "127.0.0.1"


def test_a_bad_run_or_column_fails_on_the_driver_with_one_line(local_spark, trained_run, tmp_path):
    from nerctl.core.errors import InputError
    from nerctl.spark import tag

    frame = local_spark.createDataFrame([("jaws",)], "body string")
    jobs = set(local_spark.sparkContext.statusTracker().getJobIdsForGroup())
    with pytest.raises(InputError, match="no such run directory"):
        tag(frame, "body", run=tmp_path / "missing")
    with pytest.raises(InputError, match=r"no column 'text' in the DataFrame \(its columns: body\)"):
        tag(frame, "text", run=trained_run)
    numbers = local_spark.createDataFrame([(1,)], "text int")
    with pytest.raises(InputError, match="column 'text' holds int, not strings"):
        tag(numbers, "text", run=trained_run)
    assert set(local_spark.sparkContext.statusTracker().getJobIdsForGroup()) == jobs  # no job ran


def test_the_command_reads_text_jsonl_and_parquet_and_writes_partitions(trained_run, tmp_path):
    """`nerctl spark` in a subprocess (its own local session): every input format in, Parquet and JSONL
    out, each text's entities those of predict."""
    import pandas as pd

    lines = [t for t in TEXTS if t]
    (tmp_path / "texts.txt").write_text("\n".join(lines) + "\n")
    pd.DataFrame({"body": lines, "n": range(len(lines))}).to_parquet(tmp_path / "texts.parquet")
    (tmp_path / "texts.jsonl").write_text("".join(json.dumps({"body": t}) + "\n" for t in lines))
    expected = {r["text"]: r["entities"] for r in predict_records(trained_run, lines)}
    env = {**os.environ, "NO_COLOR": "1"}
    for source, column, out_format in (("texts.txt", "text", "parquet"), ("texts.parquet", "body", "jsonl"),
                                       ("texts.jsonl", "body", "parquet")):
        out = tmp_path / f"out-{source}"
        import subprocess

        done = subprocess.run([sys.executable, "-m", "nerctl", "spark", str(tmp_path / source), "--output", str(out),
                               "--run", str(trained_run), "--column", column, "--output-format", out_format,
                               "--master", "local[2]"], capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode == 0, done.stderr
        assert f"-> {out} ({out_format}) on local[2]" in done.stderr
        if out_format == "parquet":
            got = pd.read_parquet(out)
            tagged = {row[column]: [dict(e) for e in row["entities"]] for _, row in got.iterrows()}
        else:
            records = [json.loads(line) for f in sorted(out.glob("part-*.json")) for line in f.read_text().splitlines()]
            tagged = {r[column]: r["entities"] for r in records}
        assert tagged == expected, source

    again = subprocess.run([sys.executable, "-m", "nerctl", "spark", str(tmp_path / "texts.txt"), "--output",
                            str(tmp_path / "out-texts.txt"), "--run", str(trained_run)],
                           capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 2 and again.stderr.strip().endswith("exists already; choose another --output")
    missing = subprocess.run([sys.executable, "-m", "nerctl", "spark", str(tmp_path / "absent.parquet"), "--output",
                              str(tmp_path / "out-absent"), "--run", str(trained_run), "--master", "local[1]"],
                             capture_output=True, text=True, env=env, timeout=300)
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1, missing.stderr
    assert missing.stderr.startswith("nerctl: error: ") and "absent.parquet: no such file or folder" in missing.stderr


def test_the_scaling_out_pages_spark_example_runs(local_spark, trained_run, tmp_path, monkeypatch, capsys):
    """docs/scaling-out.md's Spark block, as written, on the tiny run as runs/latest (test_docs runs the
    page's other blocks)."""
    from conftest import REPO
    from test_docs import SPARK_BLOCK, blocks

    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "latest").symlink_to(trained_run, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    (block,) = [b for b in blocks(REPO / "docs" / "scaling-out.md", {"python"}) if SPARK_BLOCK.search(b)]
    exec(compile(block, "docs/scaling-out.md", "exec"), {})
    printed = capsys.readouterr().out
    assert "Row(id=1, entities=[" in printed and "Row(id=2, entities=[])" in printed


def test_spark_submit_runs_the_shipped_entry_file(trained_run, tmp_path):
    """spark-submit (pyspark's own) runs the file `python -m nerctl.spark.submit --path` names, on its master:
    the command's options, its output."""
    import subprocess
    from pathlib import Path

    import pandas as pd
    import pyspark

    entry = subprocess.run([sys.executable, "-m", "nerctl.spark.submit", "--path"], capture_output=True, text=True,
                           check=True).stdout.strip()
    assert Path(entry).name == "submit.py" and Path(entry).is_file()
    (tmp_path / "texts.txt").write_text("who directed jaws\nhave you seen the dark knight\n")
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable,
           "PYSPARK_DRIVER_PYTHON": sys.executable}
    submit = Path(pyspark.__file__).parent / "bin" / "spark-submit"
    done = subprocess.run([str(submit), "--master", "local[2]", "--conf", "spark.driver.host=127.0.0.1",
                           "--conf", "spark.driver.bindAddress=127.0.0.1", entry, str(tmp_path / "texts.txt"),
                           "--output", str(tmp_path / "out"), "--run", str(trained_run)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    # spark-submit's PythonRunner merges the driver's stderr into its stdout
    assert f"-> {tmp_path / 'out'} (parquet) on local[2]" in done.stdout  # spark-submit's master
    got = pd.read_parquet(tmp_path / "out")
    expected = predict_records(trained_run, ["who directed jaws", "have you seen the dark knight"])
    assert sorted((r["text"], [dict(e) for e in r["entities"]]) for _, r in got.iterrows()) == sorted(
        (r["text"], r["entities"]) for r in expected)


def test_without_pyspark_the_command_says_what_to_install(trained_run, tmp_path):
    import subprocess

    (tmp_path / "texts.txt").write_text("who directed jaws\n")
    code = ("import sys; sys.modules['pyspark'] = sys.modules['pyspark.errors'] = None; "
            "from nerctl.cli import main; sys.argv = ['nerctl'] + sys.argv[1:]; main()")
    done = subprocess.run([sys.executable, "-c", code, "spark", str(tmp_path / "texts.txt"), "--output",
                           str(tmp_path / "out"), "--run", str(trained_run)], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip() == "nerctl: error: nerctl spark needs pyspark: pip install 'nerctl[spark]'"
