"""The training clock leaves out time spent stopped (SIGSTOP … SIGCONT)."""

from __future__ import annotations

import os
import signal
import time

from accelir.training.clock import ActiveClock


def test_clock_counts_steps_and_leaves_out_a_pause() -> None:
    with ActiveClock() as clock:
        for _ in range(3):
            time.sleep(0.02)
            clock.tick()
        assert 0.05 < clock.seconds < 0.5
        counted = clock.seconds
        time.sleep(0.6)  # "stopped": the pause ends with a SIGCONT
        os.kill(os.getpid(), signal.SIGCONT)
        time.sleep(0.01)  # let the handler run
        clock.tick()
        assert clock.seconds - counted < 0.2  # one step's worth, not the pause
        time.sleep(0.3)
        clock.tick()  # a long step without a pause counts in full
        assert clock.seconds - counted > 0.3
    assert signal.getsignal(signal.SIGCONT) is not clock._on_continue
