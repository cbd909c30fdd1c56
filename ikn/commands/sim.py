"""``ikn sim``: simulated devices, each behind a real edge agent."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from ikn.commands import attendance
from ikn.logs import configure
from ikn.running import run_until_signal
from ikn_core.settings import SimSettings


def cmd_sim(args: argparse.Namespace) -> None:
    if args.scenario == "rush":  # the morning rush loads people and checks their records
        attendance.cmd_rush(args)
        return
    settings = SimSettings.from_env()
    if args.speed is not None:
        settings = dataclasses.replace(settings, speed=args.speed)
    configure(settings.log, "sim")
    from firmware_sim.runner import run_sim
    from firmware_sim.scenario import load_scenario

    scenario = load_scenario(args.scenario)
    run_until_signal(lambda stop: run_sim(settings, scenario, stop))


def register(sub: Any) -> None:
    sim = sub.add_parser("sim", help="run simulated devices behind edge agents")
    sim.add_argument("--scenario", default="demo", help="builtin name or path to a JSON file")
    sim.add_argument("--speed", type=float, help="simulated seconds per real second")
    rush = sim.add_argument_group("--scenario rush (the attendance morning rush)")
    attendance.add_rush_options(rush, speed=False)
    sim.set_defaults(func=cmd_sim)
