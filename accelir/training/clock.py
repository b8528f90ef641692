"""``ActiveClock``: wall-clock seconds of training that leave out time the process spent stopped.

Training on a shared machine gets paused (``kill -STOP`` while a benchmark runs, Ctrl-Z) and
continued later; the minutes written into a model card and spent against ``--max-minutes`` should
be the minutes the model trained. The clock is ticked once per step; when a SIGCONT arrived since
the last tick, that interval (which holds the pause) is replaced by the previous step's duration.
"""

from __future__ import annotations

import signal
import threading
import time
from types import FrameType


class ActiveClock:
    def __init__(self) -> None:
        self.seconds = 0.0
        self._last = time.perf_counter()
        self._last_step = 0.0
        self._continued = False
        self._previous: object = None
        self._installed = False

    def __enter__(self) -> ActiveClock:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGCONT, self._on_continue)
            self._installed = True
        self._last = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._installed:
            signal.signal(signal.SIGCONT, self._previous)  # type: ignore[arg-type]
            self._installed = False

    def _on_continue(self, signum: int, frame: FrameType | None) -> None:
        self._continued = True

    def tick(self) -> float:
        """Count the time since the last tick (or a step's worth after a pause); total seconds."""
        now = time.perf_counter()
        elapsed = now - self._last
        self._last = now
        if self._continued:
            self._continued = False
            elapsed = min(elapsed, self._last_step)
        else:
            self._last_step = elapsed
        self.seconds += elapsed
        return self.seconds
