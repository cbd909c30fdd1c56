"""The edge agent's downlink through a real Mosquitto: a config push changes the
batches it publishes next, commands reach the driver and are answered with
``command_result`` readings, display states reach the simulated driver, and
malformed down messages are counted without stopping the agent."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_agent import AgentConfig, EdgeAgent
from edge_agent.agent import system_clock_synced
from firmware_sim.devices import Controls
from ikn.brokers import BrokerProcess
from ikn_core.contract import (
    CommandResult,
    ConfigCommand,
    DisplayCommand,
    DownCommand,
    IdentifyCommand,
    Observation,
    RebootCommand,
    decode_batch,
    down_topic,
    encode_down,
    parse_topic,
)
from tests.helpers import publish
from tests.test_edge_agent import DEADLINE_S, Subscriber, mqtt_settings, subscribed

DEVICE = "people-f1-a"
CONFIG = AgentConfig(reconnect_min_s=0.05, reconnect_max_s=0.5, batch_latency_s=0.05)


@dataclass(eq=False)
class QueueDriver(Controls):
    """A simulated device that reports what the test puts in its queue."""

    device_id: str = DEVICE
    queue: asyncio.Queue[Observation] = field(default_factory=lambda: asyncio.Queue(1000))

    def __post_init__(self) -> None:
        Controls.__init__(self)

    async def __aiter__(self) -> AsyncIterator[Observation]:
        while True:
            yield await self.queue.get()


def _now_ms() -> int:
    return int(time.time() * 1000)


def _count(n: int) -> Observation:
    return Observation("people_count", _now_ms(), {"count": n})


async def _send(broker: BrokerProcess, payload: bytes, device: str = DEVICE) -> None:
    await asyncio.to_thread(publish, broker.port, down_topic(device), payload)


def _up_sizes(sub: Subscriber) -> list[int]:
    return [
        len(decode_batch(m.payload).readings)
        for m in sub.on("up")
        if all(r.kind == "people_count" for r in decode_batch(m.payload).readings)
    ]


def _results(sub: Subscriber) -> dict[str, CommandResult]:
    return {r.command: r for r in sub.readings(DEVICE) if isinstance(r, CommandResult)}


@asynccontextmanager
async def running(
    broker: BrokerProcess, driver: Any
) -> AsyncIterator[tuple[Subscriber, EdgeAgent]]:
    """An agent pumping ``driver``, listening on its down topic, and a subscriber."""
    async with (
        subscribed(broker) as sub,
        EdgeAgent(DEVICE, mqtt_settings(broker), config=CONFIG) as agent,
    ):
        pump = asyncio.create_task(agent.pump(driver))
        try:
            async with asyncio.timeout(DEADLINE_S):
                await agent.wait_listening()
            yield sub, agent
        finally:
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)


def _command(cls: type[DownCommand], cid: str, **fields: object) -> bytes:
    return encode_down(cls(id=cid, ts=_now_ms(), **fields))


async def test_a_config_push_changes_the_next_batches_and_is_answered(
    mosquitto: BrokerProcess,
) -> None:
    driver = QueueDriver()
    async with running(mosquitto, driver) as (sub, agent):
        for n in range(10):
            driver.queue.put_nowait(_count(n))
        await sub.wait_until(lambda: sum(_up_sizes(sub)) == 10, "the first 10 readings")
        assert _up_sizes(sub) == [10]  # one batch: the default limit is 100

        await _send(
            mosquitto,
            _command(ConfigCommand, "cfg-1", batch_max_readings=3, sample_interval_s=30),
        )
        await sub.wait_until(lambda: "cfg-1" in _results(sub), "the config's result")
        assert _results(sub)["cfg-1"].ok
        assert agent.config.batch_max_readings == 3
        assert driver.sample_interval_s == 30.0

        for n in range(10):
            driver.queue.put_nowait(_count(n))
        await sub.wait_until(lambda: sum(_up_sizes(sub)) == 20, "the next 10 readings")
        assert max(_up_sizes(sub)[1:]) <= 3 and len(_up_sizes(sub)) >= 5


async def test_commands_and_display_reach_the_driver_and_garbage_does_not_stop_it(
    mosquitto: BrokerProcess,
) -> None:
    driver = QueueDriver()
    async with running(mosquitto, driver) as (sub, agent):
        await _send(mosquitto, b"\xff not json")
        await _send(mosquitto, b'{"v":1,"id":"bad-1","ts":1795424990763,"cmd":"selfdestruct"}')
        await _send(mosquitto, _command(IdentifyCommand, "id-1", seconds=5))
        await _send(mosquitto, _command(RebootCommand, "rb-1"))
        shown = DisplayCommand(id="disp-1", ts=_now_ms(), state="booked", until="14:30")
        await _send(mosquitto, encode_down(shown))
        await _send(mosquitto, b'{"v":1,"id":"other","cmd":"reboot"}', device="another-dev")

        await sub.wait_until(lambda: {"id-1", "rb-1", "bad-1"} <= set(_results(sub)), "results")
        results = _results(sub)
        assert results["id-1"].ok and results["rb-1"].ok
        assert not results["bad-1"].ok and "unknown_command" in (results["bad-1"].detail or "")
        assert "disp-1" not in results  # a display state is not answered
        assert [c.id for c in driver.commands] == ["id-1", "rb-1"]
        assert list(driver.displays) == [shown]
        assert agent.stats.malformed_commands == 2
        assert agent.stats.commands == 3
        assert agent.connected  # still running
        driver.queue.put_nowait(_count(7))
        await sub.wait_until(lambda: sum(_up_sizes(sub)) == 1, "a reading after the garbage")
        assert all(parse_topic(m.topic).device_id == DEVICE for m in sub.on("up"))


async def test_a_driver_without_commands_answers_not_supported(mosquitto: BrokerProcess) -> None:
    @dataclass
    class Plain:
        device_id: str = DEVICE

        async def __aiter__(self) -> AsyncIterator[Observation]:
            await asyncio.Event().wait()
            yield _count(0)

    async with running(mosquitto, Plain()) as (sub, _agent):
        await _send(mosquitto, _command(IdentifyCommand, "id-2", seconds=5))
        await sub.wait_until(lambda: "id-2" in _results(sub), "the identify result")
        assert not _results(sub)["id-2"].ok
        assert "not supported" in (_results(sub)["id-2"].detail or "")


async def test_the_online_status_is_sent_again_periodically(mosquitto: BrokerProcess) -> None:
    config = AgentConfig(reconnect_min_s=0.05, reconnect_max_s=0.5, status_interval_s=0.1)
    async with (
        subscribed(mosquitto, f"ikn/v1/dev/{DEVICE}/status") as sub,
        EdgeAgent(DEVICE, mqtt_settings(mosquitto), config=config),
    ):
        await sub.wait_until(lambda: len(sub.statuses()) >= 3, "three online statuses")
    online = [s for s in sub.statuses() if s.state == "online"]
    assert len(online) >= 3 and all(s.outbox == 0 and s.fw for s in online)


def test_the_clock_sync_state_comes_from_timesyncd(tmp_path: Path) -> None:
    assert system_clock_synced(tmp_path / "absent") is None
    assert system_clock_synced(tmp_path) is False
    (tmp_path / "synchronized").touch()
    assert system_clock_synced(tmp_path) is True


async def test_a_battery_powered_driver_reports_its_charge_in_the_status(
    mosquitto: BrokerProcess,
) -> None:
    @dataclass
    class OnBattery:
        device_id: str = DEVICE
        battery_pct: int = 64

        async def __aiter__(self) -> AsyncIterator[Observation]:
            await asyncio.Event().wait()
            yield _count(0)

    config = AgentConfig(reconnect_min_s=0.05, reconnect_max_s=0.5, status_interval_s=0.1)
    driver = OnBattery()
    async with (
        subscribed(mosquitto, f"ikn/v1/dev/{DEVICE}/status") as sub,
        EdgeAgent(DEVICE, mqtt_settings(mosquitto), config=config) as agent,
    ):
        agent.attach(driver)
        await sub.wait_until(lambda: any(s.battery_pct == 64 for s in sub.statuses()), "64 %")
        driver.battery_pct = 12
        await sub.wait_until(lambda: any(s.battery_pct == 12 for s in sub.statuses()), "12 %")


async def test_a_simulated_sensors_battery_drains_with_simulated_time() -> None:
    from firmware_sim.clock import VirtualClock
    from firmware_sim.devices import BATTERY_DRAIN_PCT_PER_DAY, Battery

    clock = VirtualClock()
    battery = Battery("desk-x", clock)
    start = battery.battery_pct
    assert 10 <= start <= 100
    assert Battery("desk-x", VirtualClock()).battery_pct == start  # the same device, the same
    await clock.sleep_until(40 * 86_400)
    assert battery.battery_pct == max(0, round(start - 40 * BATTERY_DRAIN_PCT_PER_DAY)) < start


async def test_a_driver_error_holding_a_nul_is_still_answered(mosquitto: BrokerProcess) -> None:
    """The contract refuses U+0000 in ``detail`` (PostgreSQL cannot store it): the agent
    shows it as U+FFFD, where its answer would otherwise be refused and lost."""

    @dataclass(eq=False)
    class Failing(QueueDriver):
        def on_command(self, command: DownCommand) -> None:
            raise RuntimeError("relay\x00stuck")

    async with running(mosquitto, Failing()) as (sub, _agent):
        await _send(mosquitto, _command(IdentifyCommand, "id-3", seconds=5))
        await sub.wait_until(lambda: "id-3" in _results(sub), "the identify result")
        result = _results(sub)["id-3"]
        assert (result.ok, result.detail) == (False, "RuntimeError: relay\ufffdstuck")
