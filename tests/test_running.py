"""How every ``ikn`` service stops (ikn/running.py), on real processes and real signals:
on its own when it can; cancelled at the deadline when it cannot; ended, with its
stacks on stderr, when even the cancelling does not end it."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import textwrap
import time

import pytest

# The deadlines shortened, so that each case takes a second or two rather than 16.5.
PROLOGUE = """
import asyncio, logging, sys
import ikn.running as running
running.STOP_DEADLINE_S = 1.0
running.EXIT_GRACE_S = 1.0
logging.basicConfig(level=logging.INFO, stream=sys.stderr)
print("ready", flush=True)
"""

CASES = {
    # stops as it is told
    "obliging": """
        async def main(stop):
            await stop.wait()
    """,
    # ignores the stop, but not the cancelling
    "deaf": """
        async def main(stop):
            await asyncio.sleep(3600)
    """,
    # ignores both: the wait of a library that swallows its cancellation
    "stubborn": """
        async def hold_on():
            while True:
                try:
                    await asyncio.sleep(3600)
                except asyncio.CancelledError:
                    pass

        async def main(stop):
            await hold_on()
    """,
}


def _stop(
    case: str, sig: signal.Signals = signal.SIGTERM, again_after: float | None = None
) -> tuple[int, float, str]:
    """Start ``case``, send it ``sig`` once ready (and again ``again_after`` s later):
    its exit status, how long it took to exit after the signal, and its stderr."""
    script = PROLOGUE + textwrap.dedent(CASES[case]) + "\nrunning.run_until_signal(main)\n"
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        time.sleep(0.3)  # into asyncio.run, signal handlers set
        started = time.monotonic()
        proc.send_signal(sig)
        if again_after is not None:
            time.sleep(again_after)
            proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
        return proc.returncode, time.monotonic() - started, err
    finally:
        proc.kill()
        proc.wait()


def test_a_service_that_stops_when_told_exits_at_once_and_cleanly() -> None:
    code, took, err = _stop("obliging")
    assert code == 0, err
    assert took < 1.0, f"took {took:.2f} s"
    assert "cancelling" not in err and "Timeout" not in err


def test_a_service_that_ignores_the_stop_is_cancelled_at_the_deadline() -> None:
    code, took, err = _stop("deaf")
    assert code == 0, err
    assert took >= 1.0, f"took {took:.2f} s"
    assert "still stopping 1 s after the signal; cancelling the 2 tasks left:" in err
    assert re.search(r"Task-2, waiting in:\n.*, in main\n", err), err
    assert "stopped by cancelling what was left" in err
    assert "Timeout" not in err, "ended by the watchdog (at 2 s), not by the cancelling"


def test_a_service_that_ignores_the_cancelling_too_is_ended_with_its_stacks() -> None:
    code, took, err = _stop("stubborn")
    assert code == 1, err
    assert 2.0 <= took < 4.0, f"took {took:.2f} s"
    assert "Timeout (0:00:02)!" in err
    assert re.search(r"in main\n.*, in hold_on\n", err), err  # where it was held up


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_second_signal_does_not_restart_the_watchdog(sig: signal.Signals) -> None:
    """The watchdog counts from the first signal: one sent again later (an impatient
    operator's Ctrl-C) does not push the end of a stubborn service further away."""
    code, took, err = _stop("stubborn", sig, again_after=1.8)
    assert code == 1, err
    # restarted, it would have ended it 3.8 s after the first
    assert took < 3.4, f"took {took:.2f} s: the second signal restarted the watchdog"
