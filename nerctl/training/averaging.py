"""Weight averaging (`--average-last N`): the mean of the last N epochs' weights, scored on dev at the end.

With the learning rate decaying linearly to 0, the last epochs end near one
another around a minimum; their mean can sit nearer its centre than any of
them (the idea of stochastic weight averaging). It is only a candidate: dev
decides, like it decides the best epoch, and the averaged model becomes best/
only where its dev F1 is higher.

The running sum lives in variables the checkpoint saves with each epoch, so a
resumed run averages exactly the weights an uninterrupted one would. Only the
variables training updates are averaged (the frozen ones do not change).
"""
from __future__ import annotations

import contextlib
from typing import Iterator

from ..modeling.runtime import import_tensorflow


class WeightAverage:
    """The sum and count of the variables' values at the end of epochs `first_epoch` and later."""

    def __init__(self, variables: list, last: int, epochs: int):
        tf = import_tensorflow()
        self.variables = variables
        self.first_epoch = max(1, epochs - last + 1)
        self.sums = [tf.Variable(tf.zeros_like(v), trainable=False) for v in variables]
        self.count = tf.Variable(0, dtype=tf.int64, trainable=False)

    def trackables(self) -> dict:
        """What the run's tf.train.Checkpoint saves of it."""
        return {"average_sums": self.sums, "average_count": self.count}

    def add(self, epoch: int) -> None:
        """Add the weights as they are at the end of `epoch`, if it is one of the averaged epochs."""
        if epoch >= self.first_epoch:
            for total, variable in zip(self.sums, self.variables):
                total.assign_add(variable)
            self.count.assign_add(1)

    @property
    def epochs(self) -> list[int]:
        """The epochs summed so far."""
        return list(range(self.first_epoch, self.first_epoch + int(self.count.numpy())))

    @contextlib.contextmanager
    def swapped_in(self) -> Iterator[None]:
        """The variables hold the average meanwhile; their own values come back after."""
        own = [variable.numpy() for variable in self.variables]
        count = float(self.count.numpy())
        for total, variable in zip(self.sums, self.variables):
            variable.assign(total / count)
        try:
            yield
        finally:
            for value, variable in zip(own, self.variables):
                variable.assign(value)
