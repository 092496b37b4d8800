"""Where training runs: one device, all local devices, or several machines.

Strategies are TensorFlow's own (`tf.distribute`):

    default       one device (the CPU, or the first GPU)
    mirrored      MirroredStrategy: every local GPU, in sync
    multi-worker  MultiWorkerMirroredStrategy: one process per machine, configured
                  the standard way by the TF_CONFIG variable
    auto          multi-worker when TF_CONFIG names a cluster of 2+ tasks,
                  mirrored with 2+ local GPUs, else default

The batch size stays global: each step's batch (padded to its longest window)
is cut into one contiguous slice per replica, and the loss of every slice is
divided by the whole batch's label count, so the summed gradients equal the
single-device gradient of the same batch (without dropout: masks are drawn per
replica, so with dropout the step is the same in distribution, not in its bits). The chief (task "chief", or worker 0
when there is none) alone writes the run directory.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any

from ..core.choices import STRATEGIES
from ..core.errors import InputError, NerctlError
from ..modeling.runtime import import_tensorflow

# How long one collective (a gradient all-reduce) may wait for a peer before the
# step fails: a dead worker otherwise hangs the others for ever. NERCTL_COLLECTIVE_TIMEOUT overrides.
COLLECTIVE_TIMEOUT_S = 600.0


@dataclass
class Distribution:
    strategy: Any  # a tf.distribute.Strategy
    name: str  # the resolved strategy name
    workers: int
    task: str  # e.g. "worker 1"; "local" outside a cluster
    is_chief: bool

    @property
    def replicas(self) -> int:
        return self.strategy.num_replicas_in_sync


def cluster_config(environ=os.environ) -> dict:
    """TF_CONFIG, parsed; {} when unset."""
    raw = environ.get("TF_CONFIG", "")
    if not raw.strip():
        return {}
    try:
        config = json.loads(raw)
        tasks = sum(len(v) for v in config["cluster"].values())
        config["task"]["type"], int(config["task"]["index"])
    except (ValueError, KeyError, TypeError, AttributeError):
        raise InputError('TF_CONFIG is not valid: expected {"cluster": {"worker": ["host:port", ...]}, '
                         '"task": {"type": "worker", "index": 0}}') from None
    if tasks < 1:
        raise InputError("TF_CONFIG names no tasks in its cluster")
    return config


def make_distribution(name: str) -> Distribution:
    """Create the strategy `name` (see STRATEGIES). Call before TensorFlow runs any op."""
    if name not in STRATEGIES:
        raise InputError(f"unknown strategy {name!r}: choose one of {', '.join(STRATEGIES)}")
    tf = import_tensorflow()
    cluster = cluster_config()
    if name == "auto":
        tasks = sum(len(v) for v in cluster.get("cluster", {}).values())
        gpus = len(tf.config.list_physical_devices("GPU"))
        name = "multi-worker" if tasks > 1 else "mirrored" if gpus > 1 else "default"
    if name == "default":
        return Distribution(tf.distribute.get_strategy(), name, 1, "local", True)
    if name == "mirrored":
        return Distribution(tf.distribute.MirroredStrategy(), name, 1, "local", True)
    if not cluster:
        raise InputError("--strategy multi-worker needs TF_CONFIG (see docs/scaling-out.md)")
    task_type, index = cluster["task"]["type"], int(cluster["task"]["index"])
    if task_type not in ("chief", "worker"):
        raise InputError(f"TF_CONFIG task type {task_type!r}: nerctl runs 'chief' and 'worker' tasks")
    options = tf.distribute.experimental.CommunicationOptions(
        implementation=tf.distribute.experimental.CommunicationImplementation.RING,
        timeout_seconds=collective_timeout())
    try:
        strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    except RuntimeError as err:  # TensorFlow already ran ops in this process
        raise NerctlError(f"cannot start multi-worker training here: {err}") from None
    is_chief = task_type == "chief" or ("chief" not in cluster["cluster"] and index == 0)
    workers = sum(len(cluster["cluster"].get(kind, [])) for kind in ("chief", "worker"))
    return Distribution(strategy, name, workers, f"{task_type} {index}", is_chief)


def collective_timeout(environ=os.environ) -> float:
    raw = environ.get("NERCTL_COLLECTIVE_TIMEOUT", "").strip()
    try:
        seconds = float(raw) if raw else COLLECTIVE_TIMEOUT_S
    except ValueError:
        seconds = 0.0
    if not seconds > 0:
        raise InputError(f"NERCTL_COLLECTIVE_TIMEOUT={raw!r}: give a number of seconds above 0")
    return seconds


def replica_rows(rows, replica, replicas):
    """[start, end) of `replica`'s contiguous, near-equal share of a batch's rows (may be empty).

    Plain integer arithmetic, so it works on Python ints and on tensors in a traced step.
    """
    return rows * replica // replicas, rows * (replica + 1) // replicas


def check_workers_agree(dist: Distribution, what: str, value: int) -> None:
    """Fail unless every worker holds the same `value` (e.g. a data fingerprint or the resumed epoch)."""
    if dist.workers == 1:
        return
    tf = import_tensorflow()
    local = dist.strategy.experimental_distribute_values_from_function(lambda _: tf.constant([value], tf.int64))
    if len(set(dist.strategy.gather(local, axis=0).numpy().tolist())) > 1:
        raise InputError(f"the workers disagree on {what} ({dist.task} has {value}); "
                         "every worker needs the same data and config, and --resume a run directory they all share")


def fingerprint(*parts: Any) -> int:
    """A 62-bit digest of JSON-serialisable parts (to compare workers' data cheaply)."""
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 2
