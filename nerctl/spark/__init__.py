"""nerctl on Apache Spark: `tag(df)` adds the entities of a text column, tagged on the executors.

    from nerctl.spark import tag
    tagged = tag(spark.read.parquet("docs/"), "text", run="runs/latest")
    tagged.write.parquet("tagged/")

Each row's entities are `nerctl predict --format jsonl`'s for its text (same
engine and precision: the driver chooses them, as predict would, and every
executor runs that choice). The run travels as a copy of only the files its
engine reads (`ship=True`: a zip that SparkContext.addArchive unpacks on every
executor, a few tens of MB for LiteRT or int8), or is read where it lies when
every executor sees the same path (`ship=False`: NFS, a mounted bucket). Each
Python worker loads the model on its first batch and keeps it for the next
tasks (Spark reuses its Python workers), and tags each Arrow batch sorted by
length, as predict does.
"""
from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from ..core.errors import InputError

if TYPE_CHECKING:  # imported where used: `nerctl --help` registers this layer's options without numpy
    from ..inference.batch import BatchTagger

# The record fields of `nerctl predict --format jsonl` (inference/tagger.py's Doc.to_dict), as Spark types.
ENTITY = (("type", "string"), ("text", "string"), ("start", "int"), ("end", "int"), ("score", "double"))
WORD = (("word", "string"), ("start", "int"), ("end", "int"), ("tag", "string"), ("score", "double"))


def output_schema(schema, words: bool = False):
    """`schema` (a StructType) with the entities column, and the words column when asked."""
    from pyspark.sql.types import ArrayType, DoubleType, IntegerType, StringType, StructField, StructType

    kinds = {"string": StringType(), "int": IntegerType(), "double": DoubleType()}

    def array_of(fields):
        return ArrayType(StructType([StructField(name, kinds[kind]) for name, kind in fields]))

    added = [StructField("entities", array_of(ENTITY))] + ([StructField("words", array_of(WORD))] if words else [])
    return StructType(list(schema.fields) + added)


def tag(df, text_col: str = "text", run: str | Path | None = None, *, words: bool = False,
        min_score: float | None = None, batch_size: int | None = None, backend: str = "auto",
        precision: str = "auto", ship: bool = True):
    """`df` with an `entities` column, array<struct<type, text, start, end, score>> (and `words`,
    array<struct<word, start, end, tag, score>>, when asked).

    `run`: a run directory or name (None: runs/latest), checked here on the
    driver, as is `text_col`, before any task runs; a null or empty text gets
    no entities. `ship`: copy the run's engine files to the executors (False:
    they read `run` at the same path).
    """
    from ..artifacts.rundir import resolve_run
    from ..inference.batch import BatchTagger
    from ..inference.engines import THREADS_ENV, available, choose_engine

    run_dir = resolve_run(run)
    engine = choose_engine(backend, precision, available(run_dir))
    _check_column(df, text_col)
    settings = BatchTagger(str(run_dir.path.resolve()), engine.backend, engine.precision, batch_size,
                           min_score or 0.0, words)
    shipped = _ship(df.sparkSession, settings) if ship else None

    def tag_batches(batches):
        from pyspark import SparkFiles, TaskContext

        # the engine computes with the task's cores (spark.task.cpus), not the machine's
        os.environ.setdefault(THREADS_ENV, str(TaskContext.get().cpus()))
        tagger = settings.at(SparkFiles.get(shipped)) if shipped else settings
        for batch in batches:
            yield tagger.tag_frame(batch, text_col)

    return df.mapInPandas(tag_batches, output_schema(df.schema, words))


def _check_column(df, column: str) -> None:
    from pyspark.sql.types import StringType

    types = {f.name: f.dataType for f in df.schema.fields}
    if column not in types:
        raise InputError(f"no column {column!r} in the DataFrame (its columns: {', '.join(types) or 'none'})")
    if not isinstance(types[column], StringType):
        raise InputError(f"column {column!r} holds {types[column].simpleString()}, not strings")
    taken = {"entities", "words"} & set(types)
    if taken:
        raise InputError(f"the DataFrame has a column named {', '.join(sorted(taken))} already: rename it first")


# Copies shipped by this driver process, by application and settings: each made once, removed at exit.
_SHIPPED: dict[tuple[str, BatchTagger], str] = {}


def _ship(spark, settings: BatchTagger) -> str:
    """Register a zip of the run's files for `settings.backend` with addArchive (Spark adds no folders to a
    cluster); the name SparkFiles.get finds it unpacked under on every executor."""
    key = (spark.sparkContext.applicationId, settings)
    if key not in _SHIPPED:
        from ..artifacts.rundir import RunDir
        from ..inference.batch import portable_copy

        # Spark knows an archive by its file name, once per application: unique per run and engine.
        digest = hashlib.sha1(f"{settings.run}:{settings.backend}".encode()).hexdigest()[:10]
        name = f"nerctl-{Path(settings.run).name}-{settings.backend}-{digest}"
        scratch = Path(tempfile.mkdtemp(prefix="nerctl-ship-"))
        atexit.register(shutil.rmtree, scratch, True)
        portable_copy(RunDir(Path(settings.run)), settings.backend, scratch / name)
        archive = shutil.make_archive(str(scratch / name), "zip", root_dir=scratch / name)
        spark.sparkContext.addArchive(archive)
        _SHIPPED[key] = Path(archive).name
    return _SHIPPED[key]


def check_java() -> None:
    """One clear line, not a JVM start-up traceback, where Spark would find no Java (JAVA_HOME or `java`)."""
    home = os.environ.get("JAVA_HOME")
    if not (shutil.which("java") or (home and (Path(home) / "bin" / "java").exists())):
        raise InputError("Spark needs Java 17 or newer: install a JDK (Debian: apt-get install "
                         "openjdk-17-jre-headless; `make java` does it) or set JAVA_HOME")
