"""``ikn demo`` as a user runs it: it starts, desks change state, and Ctrl-C or
SIGTERM stops every process it started."""

from __future__ import annotations

import json
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import pytest

from ikn.brokers import free_port
from tests.helpers import poll

pytestmark = pytest.mark.slow


class DemoProcess:
    def __init__(self, directory: Path, port: int, broker: str) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ikn",
                "demo",
                "--dir",
                str(directory),
                "--port",
                str(port),
                "--broker",
                broker,
                "--speed",
                "600",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def wait_for(self, text: str, within: float) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            self.output.append(line)
            if text in line:
                return
        raise AssertionError(f"{text!r} not printed; output:\n{''.join(self.output)}")

    def find(self, pattern: str) -> str:
        for line in self.output:
            match = re.search(pattern, line)
            if match:
                return match[1]
        raise AssertionError(f"{pattern!r} not in output:\n{''.join(self.output)}")


def _call(base: str, token: str, method: str, path: str, body: Any = None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    data = None
    if body is not None:
        headers["Content-Type"] = "application/json"
        data = json.dumps(body).encode()
    request = urllib.request.Request(base + path, data, headers, method=method)
    with urllib.request.urlopen(request, timeout=5) as response:
        return dict(json.load(response))


def _live(base: str, token: str) -> dict[str, Any]:
    return _call(base, token, "GET", "/api/v1/occupancy/live?floor=ikn-b1-f1")


def _front_page_offers_the_demo_people(front: str) -> None:
    """The banner's address to open: the sign-in page, with the demo's people."""
    with urllib.request.urlopen(front, timeout=10) as answer:  # follows the redirect
        assert answer.url.endswith("/login")
        page = answer.read().decode()
    assert "Masuk sebagai" in page


def _books_and_checks_in(demo: DemoProcess, base: str) -> None:
    """The banner's people, and the README's first booking with the employee's token."""
    tokens = {
        role: demo.find(rf"^    {role}\s+(ikn_\S+)\s")
        for role in ("employee", "supervisor", "facility manager", "admin")
    }
    assert len(set(tokens.values())) == 4
    database = demo.find(r"^  export IKN_DATABASE_URL=(postgresql://\S+)$")
    assert database == demo.find(r"PostgreSQL\s+(postgresql://\S+)")
    start = datetime.now(UTC) + timedelta(minutes=1)  # any time of day: open all night
    booking = _call(
        base,
        tokens["employee"],
        "POST",
        "/api/v1/bookings",
        {
            "desk": "f1-a-01",
            "start": start.isoformat(),
            "end": (start + timedelta(hours=2)).isoformat(),
        },
    )
    assert (booking["person"], booking["status"]) == ("demo-ani", "booked")
    checked = _call(base, tokens["employee"], "POST", f"/api/v1/bookings/{booking['id']}/check-in")
    assert checked["status"] == "checked_in"
    mine = _call(base, tokens["supervisor"], "GET", "/api/v1/bookings")
    assert mine["bookings"] == []  # the supervisor's token acts for the supervisor


@pytest.mark.parametrize(
    ("broker", "stop_signal"), [("mosquitto", signal.SIGTERM), ("amqtt", signal.SIGINT)]
)
def test_demo_serves_changing_desks_and_leaves_no_process_behind(
    tmp_path: Path, broker: str, stop_signal: signal.Signals
) -> None:
    demo = DemoProcess(tmp_path / "demo", free_port(), broker)
    try:
        demo.wait_for("Press Ctrl-C to stop.", within=120)
        base = demo.find(r"API\s+(http://\S+)")
        token = demo.find(r"^    facility manager\s+(ikn_\S+)\s")
        _front_page_offers_the_demo_people(demo.find(r"Open\s+(http://\S+)"))
        assert demo.find(r"Broker\s+(\w+)") == broker
        _books_and_checks_in(demo, base)

        def states() -> dict[str, str]:
            return {d["desk"]: d["state"] for d in _live(base, token)["desks"]}

        def simulated(s: dict[str, str]) -> dict[str, str]:
            return {desk: state for desk, state in s.items() if desk != "f1-manual"}

        first = poll(
            states, lambda s: len(simulated(s)) == 50 and "unknown" not in simulated(s).values(), 60
        )
        assert first["f1-manual"] == "unknown"
        poll(states, lambda s: simulated(s) != simulated(first), 60)  # occupancy changes

        # The README's check: a contract-v1 batch published by hand shows up in the API.
        port = demo.find(r"Broker\s+\w+ at mqtt://127\.0\.0\.1:(\d+)")
        now = int(time.time())
        batch = json.dumps(
            {
                "v": 1,
                "stream": "00000000-0000-4000-8000-000000000001",
                "readings": [
                    {"seq": now, "ts": now * 1000, "kind": "desk_occupancy", "occupied": True}
                ],
            }
        )
        # With Mosquitto the demo's broker has accounts, as in production: the banner's
        # command logs in as the device (the embedded amqtt has none).
        login = (
            ["-u", "desk-f1-manual", "-P", demo.find(r" -P (\S+)")] if broker == "mosquitto" else []
        )
        subprocess.run(
            [
                "mosquitto_pub",
                *login,
                "-p",
                port,
                "-q",
                "1",
                "-V",
                "mqttv311",
                "-t",
                "ikn/v1/dev/desk-f1-manual/up",
                "-m",
                batch,
            ],
            check=True,
        )
        poll(states, lambda s: s["f1-manual"] == "occupied", 30)

        if broker == "mosquitto":  # without the device's login: refused
            anonymous = subprocess.run(
                ["mosquitto_pub", "-p", port, "-q", "1", "-t", "ikn/v1/dev/desk-f1-manual/up",
                 "-m", batch],
                capture_output=True, check=False,
            )  # fmt: skip
            assert anonymous.returncode != 0

        family = psutil.Process(demo.proc.pid).children(recursive=True)
        assert len(family) >= 5  # postgres, broker, ingest, api, sim (and postgres' workers)
    finally:
        demo.proc.send_signal(stop_signal)
        code = demo.proc.wait(timeout=90)
        demo.reader.join(timeout=10)  # the pipe is read to its end, then closed even on failure
        assert demo.proc.stdout is not None
        demo.proc.stdout.close()
    demo.wait_for("demo stopped.", within=5)
    assert code == 0
    _, alive = psutil.wait_procs(family, timeout=15)
    assert alive == [], f"left behind: {[(p.pid, p.cmdline()) for p in alive]}"
