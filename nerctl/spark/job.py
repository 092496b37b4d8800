"""The job `nerctl spark` runs, and spark-submit through submit.py: read texts with Spark, tag them
(`nerctl.spark.tag`), write one Parquet or JSON-lines file per partition.

    nerctl spark 'lake/docs/*.parquet' --column body --output lake/tagged/ --master spark://head:7077
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..config import option
from ..core.errors import InputError

INPUT_FORMATS = ("auto", "parquet", "jsonl", "text")
OUTPUT_FORMATS = ("parquet", "jsonl")
# Where Spark runs with no master given (not under spark-submit): the machine's cores, in process.
LOCAL = "local[*]"


@dataclass
class SparkOptions:
    """`nerctl spark`'s own options (the engine's are EngineOptions)."""

    master: str | None = option(None, "Spark master: local[N], spark://HOST:PORT, yarn, k8s://... [default: "
                                "spark-submit's, else local[*]].", env=False)
    column: str = option("text", "The column holding the texts (text input: each line is one).", env=False)
    input_format: str = option("auto", "parquet, jsonl (a JSON object a line) or text (a text a line); auto: by "
                               "the first input's suffix (.parquet, .jsonl/.json, else text).",
                               choices=INPUT_FORMATS, env=False)
    output_format: str = option("parquet", "parquet, or jsonl: one file per partition in --output.",
                                choices=OUTPUT_FORMATS, env=False)
    words: bool = option(False, "Also write each text's words (offsets, tag, score).", flag="--words", env=False)
    ship: bool = option(True, "Copy the run's engine files to the executors; --no-ship: they read the run at "
                        "the same path (shared storage).", flag="--ship/--no-ship", env=False)


def session(master: str | None):
    """The SparkSession to run in: spark-submit's, else one on `master` (default local[*]).

    A local master binds the driver to 127.0.0.1 (nothing else needs to reach
    it) and runs its Python workers on this interpreter."""
    from pyspark.sql import SparkSession

    from . import check_java

    check_java()
    builder = SparkSession.builder.appName("nerctl")
    master = master or (None if os.environ.get("SPARK_ENV_LOADED") else LOCAL)
    if master:
        builder = builder.master(master)
    if master and master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        log_config = Path(__file__).with_name("log4j2.properties")
        builder = (builder.config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
                   .config("spark.ui.showConsoleProgress", "false")
                   .config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile=file:{log_config}"))
    return builder.getOrCreate()


def input_format(inputs: Sequence[str], fmt: str) -> str:
    """The format to read `inputs` as: `fmt`, or for auto the first input's suffix."""
    if fmt != "auto":
        return fmt
    suffix = Path(inputs[0].rstrip("/*")).suffix.lower()
    return {".parquet": "parquet", ".jsonl": "jsonl", ".json": "jsonl"}.get(suffix, "text")


def read_texts(spark, inputs: Sequence[str], fmt: str, column: str):
    """A DataFrame of `inputs` (paths or globs), a text line a row in column `column` for text files."""
    from pyspark.errors import AnalysisException

    reader = {"parquet": spark.read.parquet, "jsonl": spark.read.json, "text": spark.read.text}[fmt]
    try:
        frame = reader(*inputs) if fmt != "jsonl" else reader(list(inputs))
    except AnalysisException as err:
        raise InputError(f"cannot read {', '.join(inputs)} as {fmt}: {_first_line(err)}") from None
    return frame.withColumnRenamed("value", column) if fmt == "text" else frame


def run_job(inputs: Sequence[str], output: str, run: str | None, options: SparkOptions, backend: str = "auto",
            precision: str = "auto", batch_size: int | None = None, min_score: float = 0.0, spark=None) -> str:
    """Tag `inputs` into `output` (a folder that must not exist); the master it ran on."""
    try:
        from pyspark.errors import AnalysisException
    except ImportError:
        raise InputError("nerctl spark needs pyspark: pip install 'nerctl[spark]'") from None

    from . import tag

    from ..artifacts.rundir import resolve_run

    check_paths(inputs, output)
    resolve_run(run)  # before the JVM starts: a user error is one line, not Spark's start-up log
    spark = spark or session(options.master)
    frame = read_texts(spark, inputs, input_format(inputs, options.input_format), options.column)
    tagged = tag(frame, options.column, run, words=options.words, min_score=min_score, batch_size=batch_size,
                 backend=backend, precision=precision, ship=options.ship)
    writer = tagged.write.mode("errorifexists")
    try:
        writer.parquet(output) if options.output_format == "parquet" else writer.json(output)
    except AnalysisException as err:
        raise InputError(f"{output}: {_first_line(err)}") from None
    return spark.sparkContext.master


def check_paths(inputs: Sequence[str], output: str) -> None:
    """Inputs on this machine's file system must exist (a glob: match something); the output must not.
    Paths with a scheme (hdfs://, s3a://) are Spark's to check."""
    import glob

    if not inputs:
        raise InputError("give at least one input path or glob")
    for path in inputs:
        if "://" not in path and not glob.glob(path):
            raise InputError(f"{path}: no such file or folder" + (" (the glob matches nothing)" if glob.has_magic(path) else ""))
    if "://" not in output and Path(output).exists():
        raise InputError(f"{output}: exists already; choose another --output")


def _first_line(err: Exception) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
