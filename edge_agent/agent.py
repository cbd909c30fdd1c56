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
on the asyncio loop (see ``edge_agent.transport`` for why not a paho thread).
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

from paho.mqtt.client import Client, ConnectFlags, DisconnectFlags, MQTTMessage
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge_agent.backoff import Backoff
from edge_agent.badge import pseudonymise
from edge_agent.config import AgentConfig, AgentStats
from edge_agent.downlink import Downlink, configured, result_observation
from edge_agent.driver import Driver
from edge_agent.errors import AgentClosedError, ConnectRefusedError
from edge_agent.faults import DeliveryFaults
from edge_agent.outbox import MemoryOutbox, Outbox
from edge_agent.transport import LoopBridge, make_client
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
from ikn_core.settings import MqttSettings

log = logging.getLogger(__name__)

TICK_S = 1.0  # how often keepalive is checked
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


class EdgeAgent:
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
        self._client: Client | None = None
        self._bridge: LoopBridge | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._connack: asyncio.Future[None] | None = None
        self._lost = asyncio.Event()
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
        if self._supervisor is not None or self._closing:
            raise RuntimeError(f"{self.device_id}: the agent was already started")
        self._client = make_client(
            self.device_id,
            self._mqtt,
            keepalive_s=self._config.keepalive_s,
            connect_timeout_s=self._config.connect_timeout_s,
            will_topic=self._status_topic,
            will_payload=WILL,
        )
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe
        self._bridge = LoopBridge(self._client, asyncio.get_running_loop())
        self._started_at = time.monotonic()
        self._supervisor = asyncio.create_task(self._supervise(), name=f"agent-{self.device_id}")

    async def close(self) -> None:
        """Flush the outbox (for at most ``close_timeout_s``), publish the retained
        offline status, disconnect (each bounded). Safe to call more than once."""
        if self._closed:
            return
        self._closing = True
        if self._supervisor is not None and not self._aborted:
            await self._flush_for_close()
        await self._stop_supervisor()
        if self._connected and not self._aborted:
            await self._say_offline()
        self._release_transport()
        self._closed = True
        log.debug("%s: closed (%s)", self.device_id, self.stats)

    def abort(self) -> None:
        """Vanish as a device losing power would: drop the connection without DISCONNECT
        (the broker then publishes the Will) and stop. ``close()`` still awaits the rest."""
        self._aborted = self._closing = True
        if self._supervisor is not None:
            self._supervisor.cancel()
        if self._bridge is not None:
            self._bridge.sever()
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

    async def _supervise(self) -> None:
        backoff = Backoff(self._config.reconnect_min_s, self._config.reconnect_max_s, self._rng)
        while True:
            try:
                if not self._connected:  # (a late CONNACK may have come during the backoff)
                    await self._connect()
                backoff.reset()
                await self._hold()
            except (OSError, TimeoutError, ConnectRefusedError) as exc:
                # Once per outage at WARNING: a fleet of thousands must not flood the log.
                level = logging.WARNING if backoff.attempts == 0 else logging.DEBUG
                log.log(level, "%s: cannot connect to %s: %r", self.device_id, self._mqtt.url, exc)
            except Exception:
                log.exception("%s: connection supervisor failed; retrying", self.device_id)
            await asyncio.sleep(backoff.next_delay())

    async def _connect(self) -> None:
        assert self._bridge is not None
        self._lost = asyncio.Event()
        self._connack = asyncio.get_running_loop().create_future()
        await self._bridge.open(self._executor)
        async with asyncio.timeout(self._config.connect_timeout_s):
            await self._connack

    async def _hold(self) -> None:
        """Keep the connection alive until it is lost."""
        assert self._bridge is not None
        while not self._lost.is_set():
            with suppress(TimeoutError):
                async with asyncio.timeout(TICK_S):
                    await self._lost.wait()
            self._bridge.tick()
            self._uplink.tick()
            if self._connected and time.monotonic() - self._status_sent >= (
                self._config.status_interval_s
            ):
                self._publish_status(self._status("online"))

    async def _stop_supervisor(self) -> None:
        if self._supervisor is not None:
            self._supervisor.cancel()
            with suppress(asyncio.CancelledError):
                await self._supervisor

    async def _say_offline(self) -> None:
        assert self._client is not None and self._bridge is not None
        bridge, client = self._bridge, self._client
        self._offline_mid = self._publish_status(self._status("offline"))
        with suppress(TimeoutError):
            async with asyncio.timeout(CLOSE_GRACE_S):
                await self._wait_until(lambda: self._offline_acked)
        client.disconnect()
        with suppress(TimeoutError):
            async with asyncio.timeout(CLOSE_GRACE_S):
                await self._wait_until(lambda: not bridge.watching)

    def _release_transport(self) -> None:
        self._uplink.stop()
        if self._bridge is not None:
            self._bridge.detach()
        sock = self._client.socket() if self._client is not None else None
        if sock is not None:
            sock.close()
        self._set_connected(False)

    def _set_connected(self, connected: bool) -> None:
        self._connected = connected
        self._uplink.set_online(connected)
        self._notify()

    # -- publishing ---------------------------------------------------------------------

    def _send_batch(self, payload: bytes) -> int:
        assert self._client is not None
        return self._client.publish(self._up, payload, qos=1).mid

    def _publish_status(self, status: Status) -> int:
        assert self._client is not None
        self._status_sent = time.monotonic()
        return self._client.publish(
            self._status_topic, encode_status(status), qos=1, retain=True
        ).mid

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

    # -- paho callbacks (on the loop thread) --------------------------------------------

    def _on_connect(
        self,
        _client: Client,
        _userdata: Any,
        _flags: ConnectFlags,
        reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            self._settle_connack(ConnectRefusedError(self.device_id, reason.value, str(reason)))
            return
        self._connects += 1
        log.debug("%s: connected to %s (%d)", self.device_id, self._mqtt.url, self._connects)
        self._publish_status(self._status("online"))
        self._client_subscribe_down()
        self._set_connected(True)
        self._settle_connack(None)

    def _on_disconnect(
        self,
        _client: Client,
        _userdata: Any,
        _flags: DisconnectFlags,
        reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        if self._connected and not self._closing:
            log.warning("%s: connection lost (%s); reconnecting", self.device_id, reason)
        self._set_connected(False)
        self._lost.set()
        self._settle_connack(ConnectionError(f"connection closed before CONNACK ({reason})"))

    def _on_publish(
        self,
        _client: Client,
        _userdata: Any,
        mid: int,
        reason: ReasonCode,
        _properties: Properties,
    ) -> None:
        if not self._uplink.acked(mid, ok=not reason.is_failure) and mid == self._offline_mid:
            self._offline_acked = True
        self._notify()

    def _on_message(self, _client: Client, _userdata: Any, msg: MQTTMessage) -> None:
        if msg.topic == self._down:
            self._downlink.handle(bytes(msg.payload))

    def _client_subscribe_down(self) -> None:
        assert self._client is not None
        self._listening = False
        self._down_mid = self._client.subscribe(self._down, qos=1)[1]

    def _on_subscribe(
        self,
        _client: Client,
        _userdata: Any,
        mid: int,
        reasons: list[ReasonCode],
        _properties: Properties | None,
    ) -> None:
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

    def _settle_connack(self, error: BaseException | None) -> None:
        fut = self._connack
        if fut is None or fut.done():
            return
        if error is None:
            fut.set_result(None)
        else:
            fut.set_exception(error)
