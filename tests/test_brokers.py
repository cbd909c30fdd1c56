"""Broker processes: a missing Mosquitto is a clear failure naming the install command."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ikn import brokers


def test_missing_mosquitto_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "which", lambda *_a, **_k: None)
    with pytest.raises(brokers.BrokerError, match="apt-get install mosquitto"):
        brokers.start_mosquitto(tmp_path)


def test_a_broker_that_cannot_listen_reports_its_log(tmp_path: Path) -> None:
    first = brokers.start_mosquitto(tmp_path / "a")
    try:
        with pytest.raises(brokers.BrokerError, match="mosquitto: broker exited"):
            brokers.start_mosquitto(tmp_path / "b", port=first.port)
    finally:
        first.stop()
