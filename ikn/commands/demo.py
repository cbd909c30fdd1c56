"""``ikn demo``: the whole platform on one machine, with no configuration."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ikn.logs import configure
from ikn_core.settings import LogSettings


def cmd_demo(args: argparse.Namespace) -> None:
    configure(LogSettings(), "demo")
    from ikn.demo import Demo, DemoOptions

    options = DemoOptions(
        directory=args.dir, api_port=args.port, broker=args.broker, speed=args.speed
    )
    sys.exit(Demo(options).run())


def register(sub: Any) -> None:
    demo = sub.add_parser("demo", help="run everything locally with no configuration")
    demo.add_argument("--dir", default=".ikn-demo", help="where the demo keeps its data")
    demo.add_argument("--port", type=int, default=8080, help="API port (a free one if taken)")
    demo.add_argument("--broker", choices=["auto", "mosquitto", "amqtt"], default="auto")
    demo.add_argument("--speed", type=float, default=60.0, help="simulated seconds per real second")
    demo.set_defaults(func=cmd_demo)
