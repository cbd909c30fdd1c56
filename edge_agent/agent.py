"""The edge agent: one device's connection to the platform.

It numbers what the device's driver observes (``stream`` + ``seq``, via
``make_reading``; an observation that does not fit the contract is counted and
logged, never fatal), keeps the readings in an outbox until the broker has
acknowledged them (with ``AgentConfig.await_stored``: until the platform's
``stored`` notice on ``down`` says PostgreSQL holds them), and publishes them in
contract-v1 batches with QoS 1 on ``ikn/v1/dev/{id}/up``. Health goes, retained,
to ``ikn/v1/dev/{id}/status``: ``online`` on every connect and every
``status_interval_s``, ``offline`` on a graceful close, and the broker publishes
the Will ``{"v":1,"state":"offline"}`` when the agent vanishes. It subscribes to
its own ``down`` topic on every connect and hands what arrives to
``edge_agent.downlink`` (config applied without a restart, commands to the
driver, results back as ``command_result`` readings, stored notices to the uplink).

Usage::

    async with EdgeAgent(driver.device_id, settings.mqtt) as agent:
        await agent.pump(driver, stop)      # until the driver ends or stop is set
    # leaving the block flushes the outbox, says offline and disconnects

The agent connects in the background and keeps reconnecting (exponential
backoff with jitter); readings wait in the outbox meanwhile. All its work runs
on the asyncio loop, through the project's MQTT adapter (``ikn_core.mqtt``).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from concurrent.futures import Executor
from contextlib import suppress
from pathlib import Path
from types import TracebackType
from typing import Any

from paho.mqtt.client import MQTTMessage
from paho.mqtt.reasoncodes import ReasonCode

from edge_agent.badge import pseudonymise
from edge_agent.config import AgentConfig, AgentStats
from edge_agent.downlink import Downlink, configured, result_observation
from edge_agent.driver import Driver
from edge_agent.errors import AgentClosedError
from edge_agent.faults import DeliveryFaults
from edge_agent.outbox import MemoryOutbox, Outbox
from edge_agent.uplink import Confirm, Uplink
from ikn_core.contract import (
    ConfigCommand,
    Observation,
    Status,
    StoredNotice,
    down_topic,
    encode_status,
    make_reading,
    status_topic,
    up_topic,
)
from ikn_core.errors import ContractError
from ikn_core.mqtt import Backoff, Handler, MqttConnection, Session, Will
from ikn_core.settings import MqttSettings

log = logging.getLogger(__name__)

CLOSE_GRACE_S = 2.0  # for the offline status and DISCONNECT, after the flush
WILL = encode_status(Status(state="offline"))
TIMESYNC_DIR = Path("/run/systemd/timesync")  # systemd-timesyncd's state


def _confirm(config: AgentConfig) -> Confirm | None:
    if not config.await_stored:
        return None
    return Confirm(config.stored_timeout_s, config.stored_timeout_max_s, config.max_unconfirmed)


def system_clock_synced(timesync_dir: Path = TIMESYNC_DIR) -> bool | None:
    """Whether systemd-timesyncd has synchronised the clock (its ``synchronized``
    flag file); None when it does not run here, so the status leaves the field out."""
    if not timesync_dir.is_dir():
        return None
    return (timesync_dir / "synchronized").exists()


class EdgeAgent(Handler):
    """One device's MQTT connection, outbox and uplink. Use it from one asyncio loop."""

    def __init__(
        self,
        device_id: str,
        mqtt: MqttSettings,
        *,
        config: AgentConfig | None = None,
        outbox: Outbox | None = None,
        executor: Executor | None = None,
        rng: random.Random | None = None,
        site_key: bytes | None = None,
        faults: DeliveryFaults | None = None,
    ) -> None:
        self.device_id = device_id
        self._site_key = site_key  # turns a badge's card number into its token
        self._up = up_topic(device_id)  # validates the id
        self._status_topic = status_topic(device_id)
        self._down = down_topic(device_id)
        self._mqtt = mqtt
        self._config = config or AgentConfig()
        self._outbox = outbox if outbox is not None else MemoryOutbox(self._config.outbox_capacity)
        self._executor = executor
        self._rng = rng or random.Random()
        self._uplink = Uplink(
            self._outbox,
            self._send_batch,
            batch_max=self._config.batch_max_readings,
            latency_s=self._config.batch_latency_s,
            window=self._config.max_in_flight,
            max_bytes=self._config.batch_max_bytes,
            faults=faults,
            confirm=_confirm(self._config),
        )
        self._downlink = Downlink(
            device_id, self._apply_config, self._report_result, self._on_stored
        )
        self._status_sent = 0.0
        self._down_mid: int | None = None
        self._listening = False
        self._conn: MqttConnection | None = None
        self._changed = asyncio.Event()
        self._started_at = time.monotonic()
        self._connected = False
        self._connects = 0
        self._rejected = 0
        self._offline_mid: int | None = None
        self._offline_acked = False
        self._closing = False
        self._closed = False
        self._aborted = False

    # -- lifecycle ----------------------------------------------------------------------

    async def __aenter__(self) -> EdgeAgent:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Start connecting in the background; returns at once (see ``wait_connected``)."""
        if self._conn is not None or self._closing:
            raise RuntimeError(f"{self.device_id}: the agent was already started")
        session = Session(
            self.device_id,
            keepalive_s=self._config.keepalive_s,
            connect_timeout_s=self._config.connect_timeout_s,
            max_inflight=0,  # the uplink bounds what is in flight, not paho
            will=Will(self._status_topic, WILL),
        )
        backoff = Backoff(self._config.reconnect_min_s, self._config.reconnect_max_s, self._rng)
        self._conn = MqttConnection(
            self._mqtt, session, self, backoff=backoff, executor=self._executor
        )
        self._started_at = time.monotonic()
        self._conn.start()

    async def close(self) -> None:
        """Flush the outbox (for at most ``close_timeout_s``), publish the retained
        offline status, disconnect (each bounded). Safe to call more than once."""
        if self._closed:
            return
        self._closing = True
        conn = self._conn
        if conn is not None and not self._aborted:
            await self._flush_for_close()
        if conn is not None:
            await conn.stop_supervising()
            if self._connected and not self._aborted:
                await self._say_offline(conn)
            conn.release()
        self._uplink.stop()
        self._set_connected(False)
        self._closed = True
        log.debug("%s: closed (%s)", self.device_id, self.stats)

    def abort(self) -> None:
        """Vanish as a device losing power would: drop the connection without DISCONNECT
        (the broker then publishes the Will) and stop. ``close()`` still awaits the rest."""
        self._aborted = self._closing = True
        if self._conn is not None:
            self._conn.sever()
        self._set_connected(False)

    # -- feeding ------------------------------------------------------------------------

    def submit(self, obs: Observation) -> None:
        """Number ``obs`` and keep it for publishing; never blocks, never raises for
        an observation that does not fit the contract (it is counted and logged).
        A badge's ``card`` number is replaced by its token first (``edge_agent.badge``)."""
        if self._closing:
            raise AgentClosedError(self.device_id)
        try:
            reading = make_reading(pseudonymise(obs, self._site_key), self._outbox.next_seq)
        except (ContractError, TypeError, ValueError) as exc:
            self._reject(obs, exc)
            return
        self._uplink.offer(reading)

    async def pump(self, driver: Driver, stop: asyncio.Event | None = None) -> None:
        """Submit the driver's observations until it ends or ``stop`` is set."""
        if driver.device_id != self.device_id:  # a payload never speaks for another device
            raise ValueError(f"driver {driver.device_id!r} is not device {self.device_id!r}")
        self.attach(driver)
        async with asyncio.TaskGroup() as tg:
            feeder = tg.create_task(self._feed(driver))
            if stop is not None:
                stopper = tg.create_task(stop.wait())
                feeder.add_done_callback(lambda _: stopper.cancel())
                stopper.add_done_callback(lambda _: feeder.cancel())

    def attach(self, driver: Driver) -> None:
        """Hand down commands and display states to ``driver`` (``pump`` does it; a
        caller that feeds ``submit`` itself calls this)."""
        self._downlink.driver = driver

    async def _feed(self, driver: Driver) -> None:
        observations = aiter(driver)
        try:
            async for obs in observations:
                self.submit(obs)
        except AgentClosedError:
            pass  # aborted while the driver still had observations: they die with the device
        except Exception:
            log.exception("%s: the driver failed; no more observations", self.device_id)
        finally:
            aclose: Callable[[], Any] | None = getattr(observations, "aclose", None)
            if aclose is not None:
                await aclose()

    def _reject(self, obs: Observation, exc: Exception) -> None:
        self._rejected += 1
        level = logging.WARNING if self._rejected % 100 == 1 else logging.DEBUG
        log.log(
            level,
            "%s: observation %r rejected (%d so far): %s",
            self.device_id,
            obs.kind,
            self._rejected,
            exc,
        )

    # -- waiting ------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def last_error(self) -> BaseException | None:
        """Why the last connection attempt failed (``ConnectRefusedError`` with the
        CONNACK reason, ``ssl.SSLCertVerificationError``, ...); None once connected."""
        return self._conn.last_error if self._conn is not None else None

    @property
    def stats(self) -> AgentStats:
        return AgentStats(
            device_id=self.device_id,
            connected=self._connected,
            connects=self._connects,
            outbox=len(self._outbox),
            in_flight=self._uplink.in_flight,
            delivered=self._uplink.delivered,
            dropped=self._outbox.dropped,
            rejected=self._rejected,
            refused=self._uplink.refused,
            commands=self._downlink.received,
            malformed_commands=self._downlink.malformed,
            unconfirmed=self._uplink.unconfirmed or 0,
            confirmed=self._uplink.confirmed,
            resent=self._uplink.resent,
        )

    @property
    def config(self) -> AgentConfig:
        """The configuration in force (a ``config`` command changes it)."""
        return self._config

    async def wait_connected(self) -> None:
        """Wait until connected (bound it with ``asyncio.timeout``)."""
        await self._wait_until(lambda: self._connected)

    async def wait_listening(self) -> None:
        """Wait until the broker confirmed the ``down`` subscription of this connection."""
        await self._wait_until(lambda: self._connected and self._listening)

    async def wait_disconnected(self) -> None:
        """Wait until the connection is down (bound it with ``asyncio.timeout``)."""
        await self._wait_until(lambda: not self._connected)

    async def flush(self) -> None:
        """Publish what is pending now and wait until the broker has acknowledged
        every reading (with ``await_stored``: until stored notices confirmed every
        reading; bound it with ``asyncio.timeout``)."""
        self._uplink.flush()
        await self._wait_until(lambda: self._uplink.idle)

    async def _flush_for_close(self) -> None:
        try:
            async with asyncio.timeout(self._config.close_timeout_s):
                await self.flush()
        except TimeoutError:
            log.warning(
                "%s: closing with %d readings not acknowledged", self.device_id, len(self._outbox)
            )

    async def _wait_until(self, ready: Callable[[], bool]) -> None:
        while not ready():
            await self._changed.wait()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # -- connection ---------------------------------------------------------------------

    async def _say_offline(self, conn: MqttConnection) -> None:
        self._offline_mid = self._publish_status(self._status("offline"))
        with suppress(TimeoutError):
            async with asyncio.timeout(CLOSE_GRACE_S):
                await self._wait_until(lambda: self._offline_acked)
        await conn.close(CLOSE_GRACE_S)

    def _set_connected(self, connected: bool) -> None:
        self._connected = connected
        self._uplink.set_online(connected)
        self._notify()

    # -- publishing ---------------------------------------------------------------------

    def _send_batch(self, payload: bytes) -> int:
        assert self._conn is not None
        return self._conn.publish(self._up, payload)

    def _publish_status(self, status: Status) -> int:
        assert self._conn is not None
        self._status_sent = time.monotonic()
        return self._conn.publish(self._status_topic, encode_status(status), retain=True)

    def _status(self, state: str) -> Status:
        return Status(
            state="online" if state == "online" else "offline",
            fw=self._config.fw,
            uptime_s=int(time.monotonic() - self._started_at),
            outbox=len(self._outbox),
            dropped=self._outbox.dropped,
            clock_synced=system_clock_synced(),
            battery_pct=self._battery_pct(),
            unconfirmed=self._uplink.unconfirmed,
        )

    def _battery_pct(self) -> int | None:
        """The driver's ``battery_pct`` (0-100), when its device runs on a battery."""
        level = getattr(self._downlink.driver, "battery_pct", None)
        return level if type(level) is int and 0 <= level <= 100 else None

    # -- connection events (Handler, on the loop thread) --------------------------------

    def on_connected(self) -> None:
        self._connects += 1
        log.debug("%s: connected to %s (%d)", self.device_id, self._mqtt.url, self._connects)
        self._publish_status(self._status("online"))
        self._subscribe_down()
        self._set_connected(True)

    def on_lost(self) -> None:
        self._set_connected(False)

    def on_tick(self) -> None:
        self._uplink.tick()
        if time.monotonic() - self._status_sent >= self._config.status_interval_s:
            self._publish_status(self._status("online"))

    def on_published(self, mid: int, ok: bool) -> None:
        if not self._uplink.acked(mid, ok=ok) and mid == self._offline_mid:
            self._offline_acked = True
        self._notify()

    def on_message(self, msg: MQTTMessage) -> None:
        if msg.topic == self._down:
            self._downlink.handle(bytes(msg.payload))

    def _subscribe_down(self) -> None:
        assert self._conn is not None
        self._listening = False
        self._down_mid = self._conn.subscribe([(self._down, 1)])

    def on_subscribed(self, mid: int, reasons: list[ReasonCode]) -> None:
        if mid != self._down_mid:
            return
        if any(r.is_failure for r in reasons):
            log.warning("%s: the broker refused the down subscription: %s", self.device_id, reasons)
            return
        self._listening = True
        self._notify()

    # -- downlink -----------------------------------------------------------------------

    def _apply_config(self, command: ConfigCommand) -> None:
        """New batch limits, from the next batch on; nothing restarts."""
        self._config = configured(self._config, command)
        self._uplink.configure(
            batch_max=self._config.batch_max_readings,
            latency_s=self._config.batch_latency_s,
            max_bytes=self._config.batch_max_bytes,
        )
        log.info("%s: configuration applied: %s", self.device_id, command)

    def _on_stored(self, notice: StoredNotice) -> None:
        """The platform holds ``notice.seqs``: the outbox forgets them."""
        self._uplink.stored(notice.stream, notice.seqs)
        self._notify()

    def _report_result(self, command_id: str, ok: bool, detail: str | None) -> None:
        """Answer a command with a ``command_result`` reading, through the outbox."""
        if not self._closing:
            self.submit(result_observation(command_id, ok, detail, int(time.time() * 1000)))
