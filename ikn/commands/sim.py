"""``ikn sim``: simulated devices, each behind a real edge agent."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ikn.commands import attendance
from ikn.logs import configure
from ikn.running import run_until_signal
from ikn_core.settings import SimSettings

if TYPE_CHECKING:
    from firmware_sim.runner import SimOptions
    from firmware_sim.scenario import Scenario


def cmd_sim(args: argparse.Namespace) -> None:
    if args.scenario == "rush":  # the morning rush loads people and checks their records
        if args.fault or args.serial or args.outbox_dir:
            print(
                "ikn sim: --fault, --serial and --outbox-dir do not apply to --scenario rush",
                file=sys.stderr,
            )
            sys.exit(2)
        attendance.cmd_rush(args)
        return
    settings = SimSettings.from_env()
    if args.speed is not None:
        settings = dataclasses.replace(settings, speed=args.speed)
    configure(settings.log, "sim")
    from firmware_sim.runner import run_sim
    from firmware_sim.scenario import load_scenario

    scenario = load_scenario(args.scenario)
    options = _sim_options(args, scenario)
    _check_passwords(settings, scenario)

    async def main(stop: asyncio.Event) -> None:
        await run_sim(settings, scenario, stop, options=options)

    run_until_signal(main)


def _sim_options(args: argparse.Namespace, scenario: Scenario) -> SimOptions:
    """``--fault``, ``--serial`` and ``--outbox-dir``, checked; exit 2 naming a bad switch."""
    from firmware_sim.errors import FaultError
    from firmware_sim.faults import parse_faults
    from firmware_sim.runner import SimOptions

    try:
        plan = parse_faults(args.fault)
        outbox_dir = Path(args.outbox_dir) if args.outbox_dir else None
        plan.check(scenario, serial=args.serial, durable=outbox_dir is not None)
    except FaultError as exc:
        print(f"ikn sim: {exc}", file=sys.stderr)
        sys.exit(2)
    return SimOptions(faults=plan, serial=args.serial, outbox_dir=outbox_dir)


def _check_passwords(settings: SimSettings, scenario: Scenario) -> None:
    """With IKN_SIM_LOGINS_FILE, every simulated device needs its line; exit 2 if not."""
    if not settings.device_passwords:
        return
    missing = sorted({d.id for d in scenario.site.devices} - set(settings.device_passwords))
    if missing:
        print(
            f"ikn sim: IKN_SIM_LOGINS_FILE has no password for {len(missing)} device(s) "
            f"of the scenario: {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''} "
            "(ikn seed --sim-logins FILE writes them all)",
            file=sys.stderr,
        )
        sys.exit(2)


def register(sub: Any) -> None:
    sim = sub.add_parser("sim", help="run simulated devices behind edge agents")
    sim.add_argument("--scenario", default="demo", help="builtin name or path to a JSON file")
    sim.add_argument("--speed", type=float, help="simulated seconds per real second")
    sim.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SPEC",
        help="inject a fault (repeatable): broker-outage=30s@60s, agent-kill[=DEVICE]@AT, "
        "duplicate=P, reorder=P, line-noise=P, flood=DEVICE:RATE/s, clock-skew=-90s "
        "(docs/simulator.md)",
    )
    sim.add_argument(
        "--serial",
        action="store_true",
        help="each device on a pseudo-terminal, read by the agent's serial driver",
    )
    sim.add_argument(
        "--outbox-dir",
        metavar="DIR",
        help="durable outboxes, one SQLite file per device in DIR (agent-kill needs it)",
    )
    rush = sim.add_argument_group("--scenario rush (the attendance morning rush)")
    attendance.add_rush_options(rush, speed=False)
    sim.set_defaults(func=cmd_sim)
