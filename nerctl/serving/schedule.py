"""When the Label Studio backend trains: the rule for annotation events, in one place.

Annotation events count towards `every`; START_TRAINING (and the legacy
PROJECT_UPDATED) asks at once. Never two trainings at once: whatever asks
during one coalesces into at most one more, started when it ends, so a burst
of 100 annotations starts one training (and perhaps one after it), not 100.
"""
from __future__ import annotations

from dataclasses import dataclass

ANNOTATION_EVENTS = ("ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATION_DELETED", "ANNOTATIONS_CREATED",
                     "ANNOTATIONS_DELETED")
TRAIN_EVENTS = ("START_TRAINING", "PROJECT_UPDATED")


class UnknownEvent(ValueError):
    """An action the backend does not train on (Label Studio is told "Unknown event")."""


@dataclass
class Schedule:
    every: int = 1  # annotation events per training
    events: int = 0  # annotation events since the last training started
    running: bool = False
    pending: bool = False  # one more training is due when the running one ends

    def on_event(self, action: str) -> bool:
        """Count `action`; True if a training should start now (the caller then starts it)."""
        if action in ANNOTATION_EVENTS:
            self.events += 1
            due = self.events >= self.every
        elif action in TRAIN_EVENTS:
            due = True
        else:
            raise UnknownEvent(action)
        if not due:
            return False
        if self.running:
            self.pending = True
            return False
        return self._start()

    def on_finished(self) -> bool:
        """The running training ended (however it ended); True if the coalesced one should start now."""
        self.running = False
        if self.pending:
            self.pending = False
            return self._start()
        return False

    def _start(self) -> bool:
        self.running, self.events = True, 0
        return True
