"""TensorFlow at run time: importing it quietly, the CPU's bfloat16 support, the compute precision."""
from __future__ import annotations

import contextlib
import linecache
import os
import sys
from pathlib import Path
from typing import Iterator

from ..core.choices import PRECISIONS
from ..core.errors import InputError, debug_enabled


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Send what C++ code writes to file descriptor 2 to /dev/null meanwhile.

    TensorFlow and LiteRT write start-up lines (CUDA probing, delegates) there
    whatever TF_CPP_MIN_LOG_LEVEL says; on a CPU machine they are noise in every
    log. Python exceptions still propagate; --debug / NERCTL_DEBUG=1 shows everything.
    """
    if debug_enabled():
        yield
        return
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_tensorflow():
    """Import TensorFlow (and find its devices) with its C++ start-up log silenced."""
    if "tensorflow" not in sys.modules:
        with native_stderr_silenced():
            import tensorflow as tf

            tf.config.list_physical_devices()
        _autograph_files_removed_at_once()
    import tensorflow as tf

    return tf


def _autograph_files_removed_at_once() -> None:
    """Remove each file autograph writes as soon as its module is loaded.

    Autograph writes every function it converts to a __autograph_generated_file*.py
    in the temp folder and removes it only at interpreter exit, so each killed,
    forked or os._exit-ed process (a test's kill -9, a server worker) leaves
    its files there for good. The module needs its file only while loading;
    linecache keeps the source for tracebacks.
    """
    try:
        from tensorflow.python.autograph.pyct import loader
    except ImportError:  # another TensorFlow layout: leave it be
        return
    write_and_load = loader.load_source
    if getattr(write_and_load, "removes_its_file", False):
        return

    def load_source(source: str, delete_on_exit: bool):
        module, file_name = write_and_load(source, delete_on_exit=False)
        linecache.cache[file_name] = (len(source), None, source.splitlines(True), file_name)  # mtime None: kept
        with contextlib.suppress(FileNotFoundError):
            os.unlink(file_name)
        return module, file_name

    load_source.removes_its_file = True
    loader.load_source = load_source


def cpu_supports_bf16(cpuinfo: str | None = None) -> bool:
    """True if the CPU has native bfloat16 arithmetic (AVX-512 BF16 or AMX).

    Without it, bfloat16 is emulated and slower than float32.
    """
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return False
    flags = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
            break
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def resolve_precision(precision: str) -> str:
    """'auto' -> 'bf16' where the CPU computes bfloat16 natively, else 'fp32'."""
    if precision not in PRECISIONS:
        raise InputError(f"unknown precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "bf16" if cpu_supports_bf16() else "fp32"
    return precision


@contextlib.contextmanager
def precision_policy(precision: str) -> Iterator[None]:
    """Build models under a Keras dtype policy, then restore the previous one.

    bf16 means Keras' mixed_bfloat16: variables stay float32, matmuls run in
    bfloat16; nerctl computes the softmax and the loss in float32. The policy is
    global Keras state, so it is restored on exit; built layers keep theirs.
    """
    tf = import_tensorflow()
    previous = tf.keras.mixed_precision.global_policy()
    tf.keras.mixed_precision.set_global_policy("mixed_bfloat16" if precision == "bf16" else "float32")
    try:
        yield
    finally:
        tf.keras.mixed_precision.set_global_policy(previous)
