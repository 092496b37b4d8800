"""Strategies: batch slicing, TF_CONFIG handling, and a real 2-worker cluster on 127.0.0.1."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from nerctl.cli import app
from nerctl.training.distribute import cluster_config, collective_timeout, replica_rows
from nerctl.core.errors import InputError
from conftest import free_ports, train_args
from test_cli import nerctl

runner = CliRunner()
WORKER_TIMEOUT_S = 240  # a worker that is still running then has hung: the test fails, the workers are killed


@pytest.mark.parametrize("rows, replicas", [(16, 2), (15, 2), (7, 3), (1, 2), (0, 2), (5, 1)])
def test_replica_rows_cover_the_batch_once_in_order(rows, replicas):
    bounds = [replica_rows(rows, r, replicas) for r in range(replicas)]
    covered = [i for start, end in bounds for i in range(start, end)]
    assert covered == list(range(rows))
    sizes = [end - start for start, end in bounds]
    assert max(sizes) - min(sizes) <= 1


def test_tf_config_is_parsed_or_refused_with_a_clear_error():
    assert cluster_config({}) == {}
    config = {"cluster": {"worker": ["h1:1", "h2:2"]}, "task": {"type": "worker", "index": 1}}
    assert cluster_config({"TF_CONFIG": json.dumps(config)}) == config
    for bad in ("{not json", '{"cluster": {}}', '{"task": {"type": "worker", "index": 0}}', "[]"):
        with pytest.raises(InputError, match="TF_CONFIG"):
            cluster_config({"TF_CONFIG": bad})


def test_collective_timeout_comes_from_the_environment_or_is_refused():
    assert collective_timeout({}) == 600.0
    assert collective_timeout({"NERCTL_COLLECTIVE_TIMEOUT": "45"}) == 45.0
    for bad in ("soon", "0", "-3"):
        with pytest.raises(InputError, match="NERCTL_COLLECTIVE_TIMEOUT"):
            collective_timeout({"NERCTL_COLLECTIVE_TIMEOUT": bad})


def test_multi_worker_without_tf_config_is_a_usage_error(tiny_model, bio_files, tmp_path, monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    result = runner.invoke(app, train_args(tiny_model, bio_files, tmp_path / "r", "--strategy", "multi-worker"))
    assert result.exit_code == 2 and "needs TF_CONFIG" in result.stderr
    assert not (tmp_path / "r").exists()


def start_workers(args: list, n: int = 2, per_worker=None, tmpdir=None) -> list[subprocess.Popen]:
    """n `nerctl` processes forming one cluster on 127.0.0.1 (worker 0 is the chief).

    `per_worker(index)` gives a worker extra arguments; `tmpdir` is their TMPDIR."""
    hosts = [f"127.0.0.1:{port}" for port in free_ports(n)]
    procs = []
    for index in range(n):
        argv = [*args, *(per_worker(index) if per_worker else [])]
        tf_config = {"cluster": {"worker": hosts}, "task": {"type": "worker", "index": index}}
        env = {**os.environ, "NO_COLOR": "1", "TF_CONFIG": json.dumps(tf_config), "NERCTL_COLLECTIVE_TIMEOUT": "60",
               **({"TMPDIR": str(tmpdir)} if tmpdir else {})}
        procs.append(subprocess.Popen([sys.executable, "-m", "nerctl", *map(str, argv)], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                      preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)))
    return procs


def finish(procs: list[subprocess.Popen]) -> list[tuple[int, str, str]]:
    """Wait (bounded) for every worker; kill all if one hangs."""
    deadline = time.monotonic() + WORKER_TIMEOUT_S
    out = []
    try:
        for p in procs:
            stdout, stderr = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
            out.append((p.returncode, stdout, stderr))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    return out


@pytest.fixture(scope="module")
def still_model(tiny_model, tmp_path_factory):
    """The tiny model without dropout: a 2-worker run must then equal one process up to float rounding."""
    folder = tmp_path_factory.mktemp("still") / "model"
    shutil.copytree(tiny_model, folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.fixture(scope="module")
def reference_run(still_model, bio_files, tmp_path_factory):
    """One process, default strategy: what the clusters below must match."""
    run = tmp_path_factory.mktemp("single") / "run"
    result = nerctl(*train_args(still_model, bio_files, run, "--strategy", "default", "--epochs", "3"))
    assert result.returncode == 0, result.stderr
    return run


def epoch_records(run_dir) -> list[dict]:
    keep = ("epoch", "loss", "lr", "dev_precision", "dev_recall", "dev_f1", "best")
    return [{k: r[k] for k in keep} for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())]


def assert_same_training(a: list[dict], b: list[dict]) -> None:
    """Tolerance per epoch: mean loss within 0.5%, dev F1 within 0.01 (one entity of ~70), lr equal.

    Summing two half-batch gradients rounds differently from one full-batch gradient, and
    Adam turns such last-bit differences in near-zero gradients into whole steps: measured
    0.05-0.1% apart after 1-3 epochs. A step that is wrong, not rounded, is caught exactly by
    test_two_replicas_take_the_same_step_as_one.
    """
    assert [r["epoch"] for r in a] == [r["epoch"] for r in b]
    for x, y in zip(a, b):
        assert x["lr"] == pytest.approx(y["lr"], rel=1e-6)
        assert x["loss"] == pytest.approx(y["loss"], rel=5e-3), (x, y)
        assert x["dev_f1"] == pytest.approx(y["dev_f1"], abs=0.01), (x, y)


@pytest.mark.cluster
def test_two_workers_train_like_one_process_and_only_the_chief_writes(still_model, bio_files, reference_run,
                                                                     tmp_path):
    single = reference_run
    shared = tmp_path / "cluster" / "run"  # both workers see this path, as on shared storage
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    outcomes = finish(start_workers(train_args(still_model, bio_files, shared, "--strategy", "multi-worker",
                                               "--epochs", "3", "--json"), tmpdir=scratch))
    for code, _, stderr in outcomes:
        assert code == 0, stderr
    chief, other = (json.loads(stdout) for _, stdout, _ in outcomes)
    assert chief["strategy"] == {"name": "multi-worker", "workers": 2, "replicas": 2}
    assert "test" in chief and "test" not in other  # only the chief scores test
    assert "[worker 1]" in outcomes[1][2] and "the chief writes" in outcomes[1][2]

    for name in ("config.json", "labels.json", "tokenizer/tokenizer.json", "best/config.json", "saved_model/saved_model.pb",
                 "model.tflite", "checkpoints/checkpoint", "metrics.jsonl", "summary.json"):
        assert (shared / name).exists(), name
    assert os.readlink(shared.parent / "latest") == "run"
    assert sorted(p.name for p in shared.parent.iterdir()) == ["latest", "run"]  # nothing from worker 1
    assert not list(scratch.glob("nerctl-worker-checkpoint-*"))  # worker 1's checkpoint copies are gone
    assert_same_training(epoch_records(shared), epoch_records(single))
    assert json.loads((shared / "summary.json").read_text())["best_epoch"] == \
        json.loads((single / "summary.json").read_text())["best_epoch"]


@pytest.mark.cluster
def test_a_killed_cluster_resumes_from_the_chiefs_checkpoint(still_model, bio_files, reference_run, tmp_path):
    run = tmp_path / "cluster" / "run"
    args = train_args(still_model, bio_files, run, "--strategy", "multi-worker", "--epochs", "3")
    procs = start_workers(args)
    deadline = time.monotonic() + WORKER_TIMEOUT_S
    while not (run / "checkpoints" / "checkpoint").exists() and time.monotonic() < deadline:
        assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
        time.sleep(0.02)
    for p in procs:
        p.kill()
    finish(procs)
    done = epoch_records(run)
    assert 1 <= len(done) < 3 and not (run / "summary.json").exists()

    outcomes = finish(start_workers(["train", "--resume", "--run-dir", run]))
    for code, _, stderr in outcomes:
        assert code == 0, stderr
        assert f"resumed after epoch {len(done)}" in stderr
    assert_same_training(epoch_records(run), epoch_records(reference_run))


@pytest.mark.cluster
@pytest.mark.parametrize("differs", ["data", "batch size"])
def test_workers_with_different_data_or_settings_stop_with_a_clear_error(still_model, bio_files, tmp_path, differs):
    run = tmp_path / "cluster" / "run"
    other = tmp_path / "other.bio"
    other.write_text(bio_files["train"].read_text().replace("spielberg", "kubrick"))
    extra = ["--train-file", other] if differs == "data" else ["--batch-size", "8"]
    # --strategy auto (the default) must pick multi-worker from TF_CONFIG, or no worker would compare.
    outcomes = finish(start_workers(train_args(still_model, bio_files, run, "--strategy", "auto"),
                                    per_worker=lambda index: extra if index else []))
    for code, _, stderr in outcomes:
        assert code == 2 and "the workers disagree on the training data and config" in stderr, stderr
    assert not run.exists()  # the chief's failed set-up left nothing behind


@pytest.mark.cluster
def test_every_worker_refuses_a_used_run_directory_at_once(still_model, bio_files, tmp_path):
    run = tmp_path / "cluster" / "run"
    run.mkdir(parents=True)
    (run / "mine.txt").write_text("an earlier run's file")
    started = time.monotonic()
    outcomes = finish(start_workers(train_args(still_model, bio_files, run, "--strategy", "multi-worker")))
    for code, _, stderr in outcomes:
        assert code == 2 and "run directory exists already" in stderr, stderr
    assert time.monotonic() - started < 50  # not after the 60 s collective timeout
    assert sorted(p.name for p in run.iterdir()) == [".lock", "mine.txt"]


STEP_SCRIPT = r"""
import json, sys
import numpy as np
import nerctl
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from nerctl.config import TrainConfig
from nerctl.modeling.model import build_model, variables_to_train
from nerctl.data.tags import LabelMap
from nerctl.training.step import make_optimizer, make_train_step

labels = LabelMap(("O", "B-A", "I-A"))
rng = np.random.default_rng(0)
ids = rng.integers(5, 60, size=(7, 9)).astype(np.int32)  # 7 rows: the replicas get 3 and 4
mask = np.ones_like(ids)
mask[5:, 6:] = 0
tags = rng.integers(0, 3, size=ids.shape).astype(np.int32)
tags[:, 0] = tags[:, -1] = -100
tags[mask == 0] = -100
out = {}
for name, strategy in (("one", tf.distribute.OneDeviceStrategy("/cpu:0")),
                       ("two", tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))):
    tf.keras.utils.set_random_seed(3)
    model = build_model(sys.argv[1], labels, strategy)
    with strategy.scope():
        optimizer = make_optimizer(TrainConfig(lr=1e-3, warmup_ratio=0.0), total_steps=10)
    step = make_train_step(model, optimizer, variables_to_train(model, False), strategy)
    losses = [float(step(ids, mask, tags)) for _ in range(3)]
    out[name] = {"replicas": strategy.num_replicas_in_sync, "losses": losses,
                 "weights": [v.numpy().ravel().tolist() for v in model.trainable_variables]}
print(json.dumps(out))
"""


@pytest.mark.cluster
def test_two_replicas_take_the_same_step_as_one(still_model):
    """The distributed step's maths, without rounding drift: a MirroredStrategy over two logical
    CPUs (replicas of 3 and 4 rows) against one device, for 3 steps of the real optimizer
    (clipping to global norm 1 included): the same losses and weights to float32 rounding."""
    result = subprocess.run([sys.executable, "-c", STEP_SCRIPT, str(still_model)], capture_output=True, text=True,
                            timeout=WORKER_TIMEOUT_S)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.splitlines()[-1])
    one, two = out["one"], out["two"]
    assert (one["replicas"], two["replicas"]) == (1, 2)
    assert one["losses"] == pytest.approx(two["losses"], rel=1e-5)
    assert one["losses"][2] < one["losses"][0]  # the steps did train
    for a, b in zip(one["weights"], two["weights"]):
        assert a == pytest.approx(b, rel=1e-4, abs=1e-6)
