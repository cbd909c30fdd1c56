"""The firmware simulator: the demo building, device behaviour on injected
clocks, and a whole simulated building publishing to a real Mosquitto."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import statistics
import subprocess
import sys
from collections import Counter
from contextlib import aclosing
from pathlib import Path
from typing import Any

import pytest

from firmware_sim import (
    BadgeBehaviour,
    CounterBehaviour,
    DeskBehaviour,
    DeskSensor,
    EnvironmentBehaviour,
    Occupancy,
    ScaledClock,
    Scenario,
    ScenarioError,
    VirtualClock,
    build_drivers,
    builtin_names,
    load_scenario,
    scenario_from_dict,
)
from firmware_sim.clock import VIRTUAL_EPOCH_MS, SkewedClock
from firmware_sim.devices import BadgeReader, SimDriver, device_rng
from firmware_sim.models import Air, badge_cards, badge_day, desk_reports, people_count
from firmware_sim.runner import run_sim
from ikn.brokers import BrokerProcess
from ikn_core.contract import BadgeTap, Observation, make_reading, parse_topic
from ikn_core.domain import DeviceKind
from ikn_core.errors import SettingsError
from ikn_core.settings import LogSettings, MqttSettings, MqttUrl, SimSettings
from tests.test_edge_agent import DEADLINE_S, Subscriber, subscribed

HOUR = 3600.0


def occupancy_of(scenario: Scenario) -> Occupancy:
    return Occupancy({d.id: d.zone_id for d in scenario.site.desks})


async def first_observations(
    driver: SimDriver, clock: VirtualClock, until_s: float
) -> list[tuple[float, Observation]]:
    """What ``driver`` reports from now until simulated time ``until_s``."""
    seen = []
    async with aclosing(aiter(driver)) as observations:  # type: ignore[type-var]
        async for obs in observations:
            if clock.now() > until_s:
                break
            seen.append((clock.now(), obs))
    return seen


# -- the scenario ------------------------------------------------------------------------


def test_demo_scenario_describes_one_building_of_100_desks() -> None:
    scenario = load_scenario("demo")
    site = scenario.site
    assert scenario.name == "demo" and "demo" in builtin_names()
    assert [(b.id, b.name, b.tz) for b in site.buildings] == [
        ("ikn-b1", "Gedung Kementerian 1", "Asia/Makassar")
    ]
    assert [(f.id, f.level) for f in site.floors] == [("ikn-b1-f1", 1), ("ikn-b1-f2", 2)]
    assert [z.id for z in site.zones] == [
        "ikn-b1-f1-a",
        "ikn-b1-f1-b",
        "ikn-b1-f2-a",
        "ikn-b1-f2-b",
    ]
    assert Counter(d.zone_id for d in site.desks) == {z.id: 25 for z in site.zones}
    assert len({d.id for d in site.desks}) == 100 and site.desks[0].id == "f1-a-01"
    kinds = Counter(d.kind for d in site.devices)
    assert kinds == {
        DeviceKind.DESK_SENSOR: 100,
        DeviceKind.PEOPLE_COUNTER: 4,
        DeviceKind.ENVIRONMENT: 2,
    }
    assert {f"desk-{d.id}" for d in site.desks} == {
        d.id for d in site.devices if d.kind is DeviceKind.DESK_SENSOR
    }
    assert {"pc-f1-a", "pc-f2-b", "env-f1", "env-f2"} <= {d.id for d in site.devices}
    assert scenario.plan("desk-f1-a-01").device.desk_id == "f1-a-01"
    assert scenario.plan("env-f2").zones == ("ikn-b1-f2-a", "ikn-b1-f2-b")


def test_demo_desks_have_floor_plan_places_and_equipment() -> None:
    desks = load_scenario("demo").site.desks
    for zone in {d.zone_id for d in desks}:
        places = [(d.x, d.y) for d in desks if d.zone_id == zone]
        assert len(set(places)) == 25
    tags = Counter(tag for d in desks for tag in d.equipment)
    assert set(tags) == {"monitor", "docking", "standing", "accessible"}
    assert tags["monitor"] == 100 and 0 < tags["accessible"] < tags["docking"] < 100


def small_scenario(**zone: Any) -> dict[str, Any]:
    return {
        "name": "kecil",
        "building": {"id": "ikn-b9", "name": "Gedung Uji"},
        "floors": [{"key": "f1", "level": 1, "zones": [{"key": "a", "desks": 3, **zone}]}],
    }


def test_a_scenario_file_by_path(tmp_path: Path) -> None:
    path = tmp_path / "kecil.json"
    path.write_text(json.dumps(small_scenario(desk_behaviour={"sit_minutes": 10})))
    scenario = load_scenario(path)
    assert scenario.name == "kecil" and scenario.building.tz == "Asia/Makassar"
    assert [d.id for d in scenario.site.devices] == [
        "desk-f1-a-01",
        "desk-f1-a-02",
        "desk-f1-a-03",
        "pc-f1-a",
        "env-f1",
    ]
    behaviour = scenario.plan("desk-f1-a-02").behaviour
    assert isinstance(behaviour, DeskBehaviour) and behaviour.sit_minutes == 10
    assert load_scenario(str(path)) == scenario


@pytest.mark.parametrize(
    ("zone", "where", "says"),
    [
        ({"desks": "3"}, "floors[0].zones[0].desks", "expected an integer"),
        ({"chairs": 3}, "floors[0].zones[0].chairs", "unknown field"),
        (
            {"desk_behaviour": {"meeting_share": 2}},
            "floors[0].zones[0].desk_behaviour",
            "between 0 and 1",
        ),
        ({"origin": [1]}, "floors[0].zones[0].origin", "a pair of numbers"),
        ({"key": "A B"}, "floors[0].zones[0].key", "lower-case"),
    ],
)
def test_a_wrong_scenario_says_where(zone: dict[str, Any], where: str, says: str) -> None:
    with pytest.raises(ScenarioError, match=says) as caught:
        scenario_from_dict(small_scenario(**zone), "kecil.json")
    assert caught.value.path.startswith(where) and caught.value.source == "kecil.json"


def test_an_unknown_builtin_lists_the_known_ones() -> None:
    with pytest.raises(ScenarioError, match="there are: demo"):
        load_scenario("nope")


# -- behaviour on injected clocks -----------------------------------------------------------


async def test_desk_sensor_changes_state_over_simulated_time() -> None:
    scenario = load_scenario("demo")
    plan = scenario.plan("desk-f1-a-01")
    occupancy, clock = occupancy_of(scenario), VirtualClock()
    sensor = DeskSensor(plan, clock, device_rng(1, plan.device.id), occupancy)

    seen = await first_observations(sensor, clock, until_s=8 * HOUR)

    assert seen[0][0] == 0.0 and seen[0][1].ts == VIRTUAL_EPOCH_MS  # at once, at start
    states = [obs.fields["occupied"] for _, obs in seen]
    changes = sum(a != b for a, b in itertools.pairwise(states))
    assert changes >= 4  # sits, breaks, meetings over a working day
    gaps = [b - a for (a, _), (b, _) in itertools.pairwise(seen)]
    assert max(gaps) <= 5 * 60 + 1e-6  # a heartbeat at least every 5 simulated minutes
    assert occupancy.people(["ikn-b1-f1-a"]) == (1 if states[-1] else 0)
    for seq, (_, obs) in enumerate(seen):
        make_reading(obs, seq)  # every report fits the contract


def test_most_desks_change_within_a_simulated_hour() -> None:
    """At speed 60 a simulated hour is a real minute: the live view moves."""
    behaviour = DeskBehaviour()
    changed = 0
    for i in range(100):
        reports = desk_reports(device_rng(0, f"desk-{i}"), behaviour)
        first = next(reports)[1]
        changed += any(occ != first for t, occ in _until(reports, HOUR))
    assert changed >= 50


def _until(reports: Any, end: float) -> list[tuple[float, bool]]:
    out: list[tuple[float, bool]] = []
    for t, occupied in reports:
        if t > end:
            return out
        out.append((t, occupied))
    return out


def test_the_same_seed_gives_the_same_run() -> None:
    def timeline(seed: int) -> list[tuple[float, bool]]:
        return _until(desk_reports(device_rng(seed, "desk-f1-a-01"), DeskBehaviour()), 8 * HOUR)

    assert timeline(3) == timeline(3)
    assert timeline(3) != timeline(4)


async def test_every_simulated_device_reports_what_fits_the_contract() -> None:
    clock = VirtualClock()
    drivers = build_drivers(load_scenario("demo"), clock, seed=5)
    kinds: Counter[str] = Counter()
    for driver in drivers:  # one after another: each jumps the clock further
        for seq, (_, obs) in enumerate(await first_observations(driver, clock, clock.now() + HOUR)):
            kinds[make_reading(obs, seq).kind] += 1
    assert set(kinds) == {"desk_occupancy", "people_count", "environment"}


def test_people_and_air_follow_occupancy() -> None:
    rng = device_rng(0, "pc-f1-a")
    counter = load_scenario("demo").plan("pc-f1-a").behaviour
    assert isinstance(counter, CounterBehaviour)
    counts = [people_count(rng, counter, seated=20) for _ in range(50)]
    assert all(19 <= c <= 24 for c in counts)

    behaviour = EnvironmentBehaviour()
    air = Air.settled(behaviour, people=0)
    empty = air.co2_ppm
    for _ in range(24):  # two hours of 40 people arriving, in 5-minute steps
        air.step(300, people=40)
    assert air.co2_ppm > empty + 400
    sample = air.sample(rng, people=40)
    assert sample["temp_c"] > behaviour.temp_c and 0 <= sample["humidity_pct"] <= 100


def test_scaled_clock_runs_faster_but_stamps_real_time() -> None:
    real = [100.0]
    clock = ScaledClock(60, monotonic=lambda: real[0], wall=lambda: 1_800_000_000.5)
    real[0] += 2.0
    assert clock.now() == 120.0  # two real seconds, two simulated minutes
    assert clock.epoch_ms() == 1_800_000_000_500


def test_device_models_do_not_need_the_edge_agent() -> None:
    code = (
        "import sys, firmware_sim, firmware_sim.devices, firmware_sim.scenario\n"
        "firmware_sim.load_scenario('demo')\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('edge_agent', 'paho'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# -- a whole building through a real broker ---------------------------------------------------


def devices_whose(sub: Subscriber, channel: str, marker: bytes) -> set[str]:
    """The devices that sent on ``channel`` a payload containing ``marker``."""
    return {parse_topic(m.topic).device_id for m in sub.on(channel) if marker in m.payload}


async def test_run_sim_publishes_every_desk_to_a_real_broker(mosquitto: BrokerProcess) -> None:
    scenario = load_scenario("demo")
    mqtt = MqttSettings(MqttUrl.parse(mosquitto.url), protocol=mosquitto.protocol)
    settings = SimSettings(mqtt=mqtt, log=LogSettings(), speed=600, seed=7)
    desk_sensors = {p.device.id for p in scenario.plans if p.device.kind is DeviceKind.DESK_SENSOR}
    stop = asyncio.Event()

    async with subscribed(mosquitto) as sub:
        sim = asyncio.create_task(run_sim(settings, scenario, stop))
        try:
            await sub.wait_until(
                lambda: devices_whose(sub, "up", b'"desk_occupancy"') >= desk_sensors,
                "a desk_occupancy reading from every desk sensor",
            )
            await sub.wait_until(
                lambda: (
                    {"pc-f1-a", "pc-f2-b"} <= devices_whose(sub, "up", b'"people_count"')
                    and {"env-f1", "env-f2"} <= devices_whose(sub, "up", b'"environment"')
                ),
                "people counts and environment",
            )
        finally:
            stop.set()
            async with asyncio.timeout(DEADLINE_S):
                await sim
        await sub.wait_until(
            lambda: len(devices_whose(sub, "status", b'"offline"')) == 106,
            "every device saying offline",
        )
    assert len(sub.readings()) >= 106  # and every batch decodes as contract v1


# -- badge readers at the entrances ------------------------------------------------------

BADGE_SCENARIO: dict[str, Any] = {
    "name": "gate",
    "building": {"id": "b9", "name": "Gedung Gerbang"},
    "floors": [
        {
            "key": "f1",
            "level": 1,
            "environment_sensor": False,
            "zones": [{"key": "a", "desks": 1, "people_counter": False}],
        }
    ],
    "behaviour": {"badge_reader": {"population": 40, "office_share": 1.0}},
    "doors": [{"key": "main"}, {"key": "east", "badge_reader": {"population": 1000}}],
}


def test_doors_become_badge_readers_with_their_behaviour() -> None:
    scenario = scenario_from_dict(BADGE_SCENARIO)
    main, east = scenario.plan("badge-main"), scenario.plan("badge-east")
    assert main.device.kind is DeviceKind.BADGE_READER
    assert main.device.zone_id == "b9-f1-a"
    assert isinstance(main.behaviour, BadgeBehaviour) and isinstance(east.behaviour, BadgeBehaviour)
    assert (main.behaviour.population, east.behaviour.population) == (40, 1000)
    assert east.behaviour.office_share == 1.0  # the building's default, kept


def test_badge_taps_come_in_waves_and_alternate_in_and_out() -> None:
    behaviour = BadgeBehaviour(population=1000, office_share=0.6)
    rng = random.Random(3)
    cards = badge_cards(rng, behaviour)
    taps = badge_day(rng, behaviour, cards, 0)
    local_h = [(t / HOUR + behaviour.start_hour, d) for t, _, d in taps]
    first_ins: dict[str, tuple[float, str]] = {}
    for t, card, direction in taps:
        first_ins.setdefault(card, (t, direction))
    arrivals = sorted(t / HOUR + behaviour.start_hour for t, d in first_ins.values())
    assert 500 <= len(arrivals) <= 700  # about 60 % of 1000 come in
    assert all(d == "in" for _, d in first_ins.values())
    assert 7.3 < statistics.median(arrivals) < 7.7  # the morning wave, WITA
    lunch = [h for h, d in local_h if d == "out" and 11 < h < 13.5]
    assert 100 < len(lunch) < 400  # about 40 % go out for lunch
    leaving = [h for h, d in local_h if d == "out" and h > 14]
    assert 15.7 < statistics.median(leaving) < 16.3  # the afternoon wave
    for card in set(first_ins):  # every card alternates in, out, ..., ending out
        directions = [d for _, c, d in taps if c == card]
        assert directions == ["in", "out"] * (len(directions) // 2)
    again = random.Random(3)
    assert badge_day(again, behaviour, badge_cards(again, behaviour), 0) == taps  # seeded


async def test_a_badge_reader_reports_card_numbers_for_the_agent_to_hash() -> None:
    scenario = scenario_from_dict(BADGE_SCENARIO)
    clock = VirtualClock()
    (reader,) = [d for d in build_drivers(scenario, clock, 1) if d.device_id == "badge-main"]
    seen = await first_observations(reader, clock, 24 * HOUR)
    assert len(seen) >= 80  # 40 people in and out, some at lunch too
    assert [t for t, _ in seen] == sorted(t for t, _ in seen)
    assert {obs.kind for _, obs in seen} == {"badge_tap"}
    assert all(set(obs.fields) == {"card", "direction"} for _, obs in seen)


async def test_simulated_badge_readers_publish_tokens_never_cards(
    mosquitto: BrokerProcess,
) -> None:
    scenario = scenario_from_dict(BADGE_SCENARIO)
    mqtt = MqttSettings(MqttUrl.parse(mosquitto.url), protocol=mosquitto.protocol)
    settings = SimSettings(
        mqtt=mqtt, log=LogSettings(), speed=20_000, seed=5, site_key=b"kunci-situs-gerbang-01"
    )
    (reader,) = [
        d for d in build_drivers(scenario, VirtualClock(), 5) if d.device_id == "badge-main"
    ]
    assert isinstance(reader, BadgeReader)
    stop = asyncio.Event()
    async with subscribed(mosquitto) as sub:
        sim = asyncio.create_task(run_sim(settings, scenario, stop))
        try:
            await sub.wait_until(
                lambda: len(devices_whose(sub, "up", b'"badge_tap"')) == 2, "taps from both doors"
            )
        finally:
            stop.set()
            async with asyncio.timeout(DEADLINE_S):
                await sim
    published = b"".join(m.payload for m in sub.messages)
    assert all(card.encode() not in published for card in reader.cards)
    badges = [r for r in sub.readings("badge-main") if isinstance(r, BadgeTap)]
    assert badges and all(r.badge.startswith("b1:") for r in badges)


def test_clock_skew_fault_injection_moves_only_the_device_clock() -> None:
    inner = VirtualClock()
    skewed = SkewedClock(inner, -90_000)
    asyncio.run(skewed.sleep_until(30.0))
    assert skewed.now() == inner.now() == 30.0
    assert skewed.epoch_ms() == inner.epoch_ms() - 90_000
    env = {"IKN_MQTT_URL": "mqtt://127.0.0.1:1883", "IKN_SIM_CLOCK_SKEW_S": "-90"}
    assert SimSettings.from_env(env).clock_skew_s == -90.0
    with pytest.raises(SettingsError, match="IKN_SIM_CLOCK_SKEW_S"):
        SimSettings.from_env({**env, "IKN_SIM_CLOCK_SKEW_S": "a week"})
