"""Shared test helpers: a small site, an MQTT publisher, polling with a deadline."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Awaitable, Callable, Mapping
from contextlib import redirect_stderr, redirect_stdout
from typing import TypeVar
from unittest import mock

import asyncpg
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from ikn import cli
from ikn_core.domain import Building, Desk, Device, DeviceKind, Floor, Site, Zone
from ikn_core.settings import ApiSettings
from ikn_store.io import import_people, import_spaces
from ikn_store.people import link_token
from ikn_store.spaces import load_site
from ikn_store.tokens import create_token

T = TypeVar("T")

# The API's pool in tests (production: IKN_DATABASE_POOL_MAX, 10, every connection
# opened at start): every connection costs a test's fresh database a backend that
# loads its catalogue and prepares the token lookup and the batch booking, more than
# the test's requests. Two: the booking lane and the token lookups' (one each); a read
# waits for a lane's statement to end. Tests of concurrency set their own.
TEST_POOL_MAX = "2"

SMALL_SITE = Site(
    buildings=(Building("b1", "Gedung Uji"),),
    floors=(Floor("b1-f1", "b1", "Lantai 1", 1), Floor("b1-f2", "b1", "Lantai 2", 2)),
    zones=(Zone("b1-f1-a", "b1-f1", "Zona A"), Zone("b1-f2-a", "b1-f2", "Zona A")),
    desks=(
        Desk("d1", "b1-f1-a", "Meja 1", 1.0, 1.0, ("monitor",)),
        Desk("d2", "b1-f1-a", "Meja 2", 2.0, 1.0),
        Desk("d3", "b1-f2-a", "Meja 3", 1.0, 1.0),
    ),
    devices=(
        Device("desk-d1", DeviceKind.DESK_SENSOR, "b1", "b1-f1-a", "d1"),
        Device("desk-d2", DeviceKind.DESK_SENSOR, "b1", "b1-f1-a", "d2"),
        Device("desk-d3", DeviceKind.DESK_SENSOR, "b1", "b1-f2-a", "d3"),
    ),
)


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def ikn_command(
    env: Mapping[str, str], *args: str, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """``ikn ARGS`` with ``env`` added to the environment: its exit status, stdout and
    stderr, as ``python -m ikn`` gives them. In this process where it can, without
    starting a Python (0.5-1 s each here): on the main thread with no event loop
    running, as a command runs its own loop and takes SIGINT and SIGTERM there; from
    an async test or another thread, a child process. For one-shot commands."""
    if threading.current_thread() is not threading.main_thread() or _loop_running():
        return subprocess.run(
            [sys.executable, "-m", "ikn", *args],
            env={**os.environ, **env},
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding="utf-8", write_through=True)  # with .buffer
    err = io.StringIO()
    with (
        mock.patch.dict(os.environ, env),
        mock.patch("sys.stdin", io.StringIO(stdin)),
        redirect_stdout(out),
        redirect_stderr(err),
    ):
        try:
            code = cli.run(list(args))
        except SystemExit as exc:  # a command's own exit: a status, or a message (1)
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
            if isinstance(exc.code, str):
                print(exc.code, file=err)
    out.flush()
    return subprocess.CompletedProcess(
        ["ikn", *args], code, raw.getvalue().decode(), err.getvalue()
    )


def api_settings(env: Mapping[str, str]) -> ApiSettings:
    """The API's settings from ``env``, with the tests' small pool unless ``env`` sets one."""
    return ApiSettings.from_env({"IKN_DATABASE_POOL_MAX": TEST_POOL_MAX, **env})


async def seed(url: str, site: Site = SMALL_SITE) -> None:
    conn = await asyncpg.connect(url)
    try:
        await load_site(conn, site)
    finally:
        await conn.close()


def publish(port: int, topic: str, payload: bytes, *, retain: bool = False) -> None:
    """Publish with QoS 1 and wait for the broker's PUBACK."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        info = client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(timeout=10)
        assert info.is_published()
    finally:
        client.disconnect()
        client.loop_stop()


async def eventually(
    probe: Callable[[], Awaitable[T]],
    accept: Callable[[T], bool],
    within: float = 20.0,
    *,
    every: float = 0.05,
) -> T:
    """Poll ``probe`` (each ``every`` s) until ``accept`` says yes; fail with the last
    value at the deadline."""
    deadline = time.monotonic() + within
    while True:
        value = await probe()
        if accept(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {within} s; last value: {value!r}")
        await asyncio.sleep(every)


async def fetch(url: str, query: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


def poll(probe: Callable[[], T], accept: Callable[[T], bool], within: float) -> T:
    """The blocking twin of ``eventually``, for tests that drive whole processes."""
    deadline = time.monotonic() + within
    while True:
        value = probe()
        if accept(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {within} s; last value: {value!r}")
        time.sleep(0.3)


def ingest_subscribed(metrics_port: int) -> bool:
    """Whether the ingest serving metrics on ``metrics_port`` holds its subscription (the
    broker confirmed it): before that, what is published is not yet the ingest's."""
    try:
        url = f"http://127.0.0.1:{metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as r:
            return b"\nikn_ingest_subscribed 1.0" in r.read()
    except OSError:
        return False


async def until_changed(
    changed: asyncio.Event, ready: Callable[[], bool], within: float, what: Callable[[], str]
) -> None:
    """Wait until ``ready()``, looking again each time ``changed`` is set (and clearing
    it); after ``within`` seconds fail with ``what()``."""
    try:
        async with asyncio.timeout(within):
            while not ready():
                changed.clear()
                await changed.wait()
    except TimeoutError:
        raise AssertionError(f"{what()} within {within} s") from None


async def bearer(url: str, name: str, role: str) -> dict[str, str]:
    """An ``Authorization`` header with a new API token ``name`` of ``role``."""
    conn = await asyncpg.connect(url)
    try:
        return {"Authorization": f"Bearer {await create_token(conn, name, role)}"}
    finally:
        await conn.close()


async def imported(
    conn: asyncpg.Connection, spaces_csv: str, people_csv: str, roles: Mapping[str, str]
) -> dict[str, dict[str, str]]:
    """``spaces_csv`` and ``people_csv`` imported as ``ikn import`` does (the people known
    since 1 September 2026, so that their autumn counts), and a bearer header for each
    person of ``roles`` (person: role)."""
    await import_spaces(conn, spaces_csv, "csv")
    await import_people(conn, people_csv, "csv")
    await conn.execute("UPDATE people SET known_since = '2026-09-01T00:00+08:00'")
    tokens = {}
    for person, role in roles.items():
        token = await create_token(conn, person, role)
        await link_token(conn, token, person)
        tokens[person] = {"Authorization": f"Bearer {token}"}
    return tokens
