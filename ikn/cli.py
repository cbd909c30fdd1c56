"""``ikn``: one command, one place that wires each service.

    ikn migrate | ingest | api | sim | seed | token create | demo

Each subcommand reads its ``Settings`` from the environment (docs/configuration.md),
builds its parts inside the running loop and runs until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

from ikn.logs import configure
from ikn_core.domain import Role
from ikn_core.errors import IknError, SettingsError
from ikn_core.settings import (
    ApiSettings,
    IngestSettings,
    LogSettings,
    MigrateSettings,
    SimSettings,
)

if TYPE_CHECKING:  # the CLI also runs on edge devices, where asyncpg is not installed
    import asyncpg

log = logging.getLogger("ikn")


def _run(main: Callable[[asyncio.Event], Coroutine[Any, Any, None]]) -> None:
    """Run ``main(stop)`` in a fresh loop; SIGINT/SIGTERM set ``stop``."""

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)

    asyncio.run(runner())


def _database_command(
    role: str, work: Callable[[asyncpg.Connection], Awaitable[None]], *, migrate_first: bool = True
) -> None:
    """Run ``work(conn)`` on one connection to ``IKN_DATABASE_URL``, migrated first."""
    settings = MigrateSettings.from_env()
    configure(settings.log, role)

    async def main(_stop: asyncio.Event) -> None:
        import asyncpg

        from ikn_store.migrations import migrate

        conn = await asyncpg.connect(settings.db.url, timeout=10)
        try:
            if migrate_first:
                await migrate(conn)
            await work(conn)
        finally:
            await conn.close()

    _run(main)


def cmd_migrate(_: argparse.Namespace) -> None:
    async def work(conn: asyncpg.Connection) -> None:
        from ikn_store.migrations import migrate

        applied = await migrate(conn)
        names = "".join(f"\n  {m.version:04d}_{m.name}" for m in applied)
        print(f"applied {len(applied)} migration(s){names}")

    _database_command("migrate", work, migrate_first=False)


def cmd_ingest(_: argparse.Namespace) -> None:
    settings = IngestSettings.from_env()
    configure(settings.log, "ingest")
    from ingest.service import IngestService

    log.info("starting ingest: %r", settings)
    _run(IngestService(settings).run)


def cmd_api(_: argparse.Namespace) -> None:
    settings = ApiSettings.from_env()
    configure(settings.log, "api")
    from aiohttp import web

    from api.app import make_app

    log.info("starting API on http://%s:%d", settings.host, settings.port)
    web.run_app(
        make_app(settings), host=settings.host, port=settings.port, print=None, access_log=None
    )


def cmd_sim(args: argparse.Namespace) -> None:
    settings = SimSettings.from_env()
    if args.speed is not None:
        settings = _replace(settings, speed=args.speed)
    configure(settings.log, "sim")
    from firmware_sim.runner import run_sim
    from firmware_sim.scenario import load_scenario

    scenario = load_scenario(args.scenario)
    _run(lambda stop: run_sim(settings, scenario, stop))


def cmd_seed(args: argparse.Namespace) -> None:
    from firmware_sim.scenario import load_scenario

    site = load_scenario(args.scenario).site

    async def work(conn: asyncpg.Connection) -> None:
        from ikn_store.spaces import load_site

        await load_site(conn, site)
        print(
            f"loaded {len(site.buildings)} building(s), {len(site.floors)} floor(s), "
            f"{len(site.desks)} desk(s), {len(site.devices)} device(s)"
        )

    _database_command("seed", work)


def cmd_token_create(args: argparse.Namespace) -> None:
    async def work(conn: asyncpg.Connection) -> None:
        from ikn_store.tokens import create_token

        print(await create_token(conn, args.name, args.role))

    _database_command("token", work)


def cmd_demo(args: argparse.Namespace) -> None:
    configure(LogSettings(), "demo")
    from ikn.demo import Demo, DemoOptions

    options = DemoOptions(
        directory=args.dir, api_port=args.port, broker=args.broker, speed=args.speed
    )
    sys.exit(Demo(options).run())


def _replace(settings: SimSettings, **changes: Any) -> SimSettings:
    import dataclasses

    return dataclasses.replace(settings, **changes)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ikn", description="IKN Workspace")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate)
    sub.add_parser("ingest", help="run the MQTT ingest").set_defaults(func=cmd_ingest)
    sub.add_parser("api", help="run the HTTP API").set_defaults(func=cmd_api)
    sim = sub.add_parser("sim", help="run simulated devices behind edge agents")
    sim.add_argument("--scenario", default="demo", help="builtin name or path to a JSON file")
    sim.add_argument("--speed", type=float, help="simulated seconds per real second")
    sim.set_defaults(func=cmd_sim)
    seed = sub.add_parser("seed", help="load a scenario's building and devices into the database")
    seed.add_argument("--scenario", default="demo")
    seed.set_defaults(func=cmd_seed)
    token = sub.add_parser("token", help="API tokens").add_subparsers(dest="action", required=True)
    create = token.add_parser("create", help="create a bearer token (printed once)")
    create.add_argument("--name", required=True)
    create.add_argument("--role", required=True, choices=[r.value for r in Role])
    create.set_defaults(func=cmd_token_create)
    demo = sub.add_parser("demo", help="run everything locally with no configuration")
    demo.add_argument("--dir", default=".ikn-demo", help="where the demo keeps its data")
    demo.add_argument("--port", type=int, default=8080, help="API port (a free one if taken)")
    demo.add_argument("--broker", choices=["auto", "mosquitto", "amqtt"], default="auto")
    demo.add_argument("--speed", type=float, default=60.0, help="simulated seconds per real second")
    demo.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    try:
        args.func(args)
    except SettingsError as exc:
        print(f"ikn {args.command}: {exc}", file=sys.stderr)
        sys.exit(2)
    except IknError as exc:
        print(f"ikn {args.command}: {exc}", file=sys.stderr)
        sys.exit(1)
