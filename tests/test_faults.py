"""Faults, with real subprocesses and real signals: kill -9 and Ctrl-C during training, then
--resume, must end exactly where an uninterrupted run ends; a locked run refuses a second training."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import make_sentences, train_args, write_bio
from nerctl.core.errors import InputError
from nerctl.artifacts.rundir import RunDir

pytestmark = pytest.mark.subprocess
TIMING_FIELDS = ("train_seconds", "train_sentences_per_second")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("faults-data")
    return {"train": write_bio(folder / "train.bio", make_sentences(3000, seed=5)),
            "dev": write_bio(folder / "dev.bio", make_sentences(60, seed=6))}


def command(tiny_model, data, run_dir, *extra) -> list[str]:
    # Every run also averages its epochs' weights (--average-last 3 sums epoch 1's too): the running sum is
    # checkpointed state like the weights, so each fault below also checks that it comes back exactly.
    return [sys.executable, "-m", "nerctl",
            *train_args(tiny_model, data, run_dir, "--epochs", "3", "--average-last", "3", *extra)]


def outcome(run_dir: Path) -> tuple[list[dict], dict, str | None]:
    """metrics.jsonl without wall-clock fields, the summary's model choice and weight average, a CRF head's
    learned scores."""
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    summary = json.loads((run_dir / "summary.json").read_text())
    crf = run_dir / "best" / "crf.json"
    return ([{k: v for k, v in m.items() if k not in TIMING_FIELDS} for m in metrics],
            {k: summary[k] for k in ("best_epoch", "best_dev_f1", "average")},
            crf.read_text() if crf.exists() else None)


def trained(tiny_model, data, run_dir: Path, *extra) -> Path:
    """The training, never interrupted."""
    done = subprocess.run(command(tiny_model, data, run_dir, *extra), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return run_dir


@pytest.fixture(scope="module")
def reference(tiny_model, data, tmp_path_factory):
    return outcome(trained(tiny_model, data, tmp_path_factory.mktemp("faults-ref") / "run"))


@pytest.fixture(scope="module")
def softmax_reference(tiny_model, data, tmp_path_factory):
    """With the softmax head (the default is the CRF)."""
    return outcome(trained(tiny_model, data, tmp_path_factory.mktemp("faults-softmax-ref") / "run", "--head", "softmax"))


def checkpoint_saving(run_dir: Path) -> bool:
    """TensorFlow writes a checkpoint into <prefix>_temp/ and renames it when complete."""
    folder = run_dir / "checkpoints"
    try:
        return any("_temp" in entry.name for entry in os.scandir(folder))
    except FileNotFoundError:
        return False


MOMENTS = {
    "in epoch 1, before any checkpoint": lambda d: (d / "labels.json").exists(),
    "during a checkpoint save": checkpoint_saving,
    "after the first checkpoint": lambda d: (d / "checkpoints" / "checkpoint").exists(),
}


def interrupt(cmd: list[str], run_dir: Path, moment, sig: int) -> subprocess.CompletedProcess:
    """Start the training, send `sig` as soon as `moment(run_dir)` holds, wait for the end."""
    # A shell script's background jobs inherit SIGINT ignored (CI may run us so), and Python then
    # leaves it ignored; a user's terminal Ctrl-C reaches a foreground process with the default.
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 300
    while not moment(run_dir):  # a tight loop: a checkpoint save lasts milliseconds
        assert process.poll() is None, "the training ended before the moment came"
        assert time.time() < deadline, "the moment never came"
    process.send_signal(sig)
    stdout, stderr = process.communicate(timeout=300)
    return subprocess.CompletedProcess(cmd, process.returncode, stdout, stderr)


def resume(run_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nerctl", "train", "--resume", "--run-dir", str(run_dir)],
                          capture_output=True, text=True, timeout=600)


def killed_then_resumed(tiny_model, data, run_dir: Path, moment: str, *extra) -> Path:
    """The training killed (-9) at `moment`, then finished with --resume."""
    killed = interrupt(command(tiny_model, data, run_dir, *extra), run_dir, MOMENTS[moment], signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    assert not (run_dir / "summary.json").exists()
    resumed = resume(run_dir)
    assert resumed.returncode == 0, resumed.stderr
    return run_dir


@pytest.mark.parametrize("moment", [
    pytest.param("after the first checkpoint"),
    pytest.param("during a checkpoint save", marks=pytest.mark.slow),
    pytest.param("in epoch 1, before any checkpoint", marks=pytest.mark.slow),
])
def test_kill_9_then_resume_ends_exactly_like_an_uninterrupted_run(tiny_model, data, tmp_path, reference, moment):
    run_dir = killed_then_resumed(tiny_model, data, tmp_path / "run", moment)
    # The default CRF head's transition scores and the weight sums are in the checkpoint: the resumed run
    # learns the same scores and averages the same weights.
    assert reference[2] is not None and reference[1]["average"] and outcome(run_dir) == reference


def test_kill_9_then_resume_with_the_softmax_head_ends_exactly_like_an_uninterrupted_run(tiny_model, data, tmp_path,
                                                                                        softmax_reference):
    run_dir = killed_then_resumed(tiny_model, data, tmp_path / "run", "after the first checkpoint", "--head", "softmax")
    assert softmax_reference[2] is None and outcome(run_dir) == softmax_reference


@pytest.mark.parametrize("sig, code, said", [(signal.SIGINT, 130, "interrupted"),
                                             (signal.SIGTERM, 143, "terminated (SIGTERM)")])
def test_ctrl_c_or_sigterm_stops_cleanly_and_resume_ends_like_an_uninterrupted_run(tiny_model, data, tmp_path,
                                                                                   reference, sig, code, said):
    run_dir = tmp_path / "run"
    stopped = interrupt(command(tiny_model, data, run_dir), run_dir, MOMENTS["after the first checkpoint"], sig)
    assert stopped.returncode == code, stopped.stderr
    last_line = stopped.stderr.strip().splitlines()[-1]
    assert last_line.startswith(f"nerctl: {said}; epochs 1-") and "Traceback" not in stopped.stderr
    assert f"Continue with: nerctl train --resume --run-dir {run_dir.resolve()}" in last_line
    saved = len((run_dir / "metrics.jsonl").read_text().splitlines())
    assert (run_dir / "checkpoints" / f"ckpt-{saved}.index").exists()  # the last complete epoch's checkpoint
    resumed = resume(run_dir)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed after epoch {saved}" in resumed.stderr
    assert outcome(run_dir) == reference


def test_a_second_training_into_a_locked_run_is_refused(trained_run, tmp_path):
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(trained_run, run_dir)
    (run_dir / "summary.json").unlink()  # an unfinished run, as during training
    with RunDir(run_dir).lock():
        second = resume(run_dir)
        with pytest.raises(InputError, match="another training"):
            with RunDir(run_dir).lock():
                pass
    assert second.returncode == 2
    assert second.stderr.strip() == (f"nerctl: error: {run_dir.resolve()}: another training (pid {os.getpid()}) "
                                     "is using this run directory")


def test_a_dead_process_does_not_hold_the_lock(tmp_path):
    code = ("import os, signal, sys; from pathlib import Path; from nerctl.artifacts.rundir import RunDir\n"
            "with RunDir(Path(sys.argv[1])).lock():\n    os.kill(os.getpid(), signal.SIGKILL)")
    dead = subprocess.run([sys.executable, "-c", code, str(tmp_path / "run")], timeout=60)
    assert dead.returncode == -signal.SIGKILL and (tmp_path / "run" / ".lock").exists()
    with RunDir(tmp_path / "run").lock():  # free at once: the kernel dropped the dead holder's flock
        pass
