"""Structured logs: ``IKN_LOG_FORMAT=json`` makes the real ``ikn ingest`` process write
one JSON object a line, with the fields a log collector keys on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from ikn.brokers import BrokerProcess, free_port
from ikn_core.contract import Batch, DeskOccupancy, encode_batch
from tests.helpers import ingest_subscribed, poll, publish

FIELDS = {"ts", "level", "logger", "msg", "role"}


def _lines(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def test_json_logs_have_time_level_logger_message_and_role(
    database_url: str, mosquitto: BrokerProcess, tmp_path: Path
) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("IKN_")},
        "IKN_DATABASE_URL": database_url,
        "IKN_MQTT_URL": mosquitto.url,
        "IKN_INGEST_CLIENT_ID": "ingest-logs",
        "IKN_LOG_FORMAT": "json",
        "IKN_INGEST_METRICS_PORT": str(port := free_port()),
    }
    log_path = tmp_path / "ingest.log"
    with log_path.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ikn", "ingest"], env=env, stdout=out, stderr=out
        )
    try:
        poll(lambda: ingest_subscribed(port), bool, 60)  # the broker confirmed the subscription
        batch = Batch(Batch.new_stream(), (DeskOccupancy(1, int(time.time() * 1000), True),))
        publish(mosquitto.port, "ikn/v1/dev/nobody/up", encode_batch(batch))
        poll(lambda: _lines(log_path), lambda docs: any("nobody" in d["msg"] for d in docs), 60)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0

    docs = _lines(log_path)  # every line is a JSON object: nothing else reaches the log
    assert all(set(d) >= FIELDS and set(d) <= FIELDS | {"exc"} for d in docs), docs
    assert {d["role"] for d in docs} == {"ingest"}
    for d in docs:
        assert datetime.fromisoformat(d["ts"]).utcoffset() == timedelta(0)
        assert d["level"] in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
    (dead,) = [d for d in docs if "nobody" in d["msg"]]
    assert (dead["level"], dead["logger"]) == ("WARNING", "ingest.service")
    assert dead["msg"].startswith("dead letter from ikn/v1/dev/nobody/up: unknown_device")
    assert any(d["msg"].startswith("ingest stopped") for d in docs)
