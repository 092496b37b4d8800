"""What the training stages pass each other: the session, the prepared network, the checkpointed state."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..artifacts.rundir import RunDir
from ..config import TrainConfig
from ..core.progress import Reporter
from ..data.tags import LabelMap
from ..modeling.encoding import Encoder, Window
from .averaging import WeightAverage
from .corpus import TrainData
from .distribute import Distribution


@dataclass
class Session:
    """One process' part in a run: what it trains, where, and as which worker."""

    config: TrainConfig
    run: RunDir
    resuming: bool
    dist: Distribution
    reporter: Reporter

    @property
    def chief(self) -> bool:
        """The only writer of the run directory."""
        return self.dist.is_chief

    def log(self, message: str) -> None:
        self.reporter.log(message if self.dist.workers == 1 else f"[{self.dist.task}] {message}")


@dataclass
class Prepared:
    """What `prepare` builds: the data, its encoding and the model, nothing written yet."""

    data: TrainData
    label_map: LabelMap
    tokenizer: Any  # transformers tokenizer, saved into the run at set-up
    encoder: Encoder
    windows: list[Window]
    model: Any
    model_path: str
    precision: str
    variables: list
    set_up: bool  # an earlier attempt set the run up (its labels and tokenizer are used)
    batch_size: int
    crf: Any = None  # --head crf: the CRF's tf.Module (crf.py), its variables among `variables`
    lr_scales: list[float] | None = None  # each variable's share of the learning rate (step.layer_lr_scales)
    distill_sum: Any = None  # --teacher: the teacher's soft loss (distill.distill_loss_fn)

    @property
    def steps_per_epoch(self) -> int:
        return -(-len(self.windows) // self.batch_size)  # batch_plan cuts the windows into full batches


@dataclass
class Checkpointed:
    """The optimizer and the state a checkpoint saves and restores with the weights."""

    optimizer: Any
    checkpoint: Any
    manager: Any
    state: dict[str, Any] = field(default_factory=dict)  # epoch, best_f1, best_epoch as tf.Variables
    average: WeightAverage | None = None  # --average-last: the running sum of the last epochs' weights

    @property
    def epoch(self) -> int:
        return int(self.state["epoch"].numpy())

    @property
    def best_epoch(self) -> int:
        return int(self.state["best_epoch"].numpy())

    @property
    def best_f1(self) -> float:
        return float(self.state["best_f1"].numpy())


@dataclass
class EpochResult:
    epoch: int
    record: dict[str, Any]  # one line of metrics.jsonl
    is_best: bool
