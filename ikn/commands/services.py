"""``ikn migrate | ingest | api | seed | token ...``: the platform's services and chores."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ikn.logs import configure
from ikn.running import database_command, run_until_signal
from ikn_core.domain import Device, Role
from ikn_core.errors import IknError
from ikn_core.settings import ApiSettings, IngestSettings, MigrateSettings, TokenSettings

if TYPE_CHECKING:
    import asyncpg

log = logging.getLogger("ikn")


def cmd_migrate(_: argparse.Namespace) -> None:
    async def work(conn: asyncpg.Connection) -> None:
        from ikn_store.migrations import migrate
        from ikn_store.roles import Roles, migrate_with_roles

        settings = MigrateSettings.from_env()
        if settings.migrate_url is None:
            applied = await migrate(conn)
        else:
            roles = Roles.from_url(settings.db.url)
            applied = await migrate_with_roles(conn, roles)
            print(f"migration role {roles.owner}, application role {roles.app}")
        names = "".join(f"\n  {m.version:04d}_{m.name}" for m in applied)
        print(f"applied {len(applied)} migration(s){names}")

    database_command("migrate", work, migrate_first=False, as_admin=True)


def cmd_ingest(_: argparse.Namespace) -> None:
    settings = IngestSettings.from_env()
    configure(settings.log, "ingest")
    from ingest.service import IngestService

    log.info("starting ingest: %r", settings)
    # The ingest makes a few container objects per reading (a hundred thousand a
    # second) and keeps next to none, so the cyclic GC's default (a collection every
    # 700 allocations) cost a quarter of decoding time for nothing: collect the young
    # generation less often, and leave what startup made (modules) out of full ones.
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    run_until_signal(IngestService(settings).run)


def cmd_api(_: argparse.Namespace) -> None:
    settings = ApiSettings.from_env()
    configure(settings.log, "api")
    from api.server import serving
    from ikn.site import make_site

    async def serve(stop: asyncio.Event) -> None:
        async with serving(make_site(settings), settings.host, settings.port):
            log.info("API listening on http://%s:%d", settings.host, settings.port)
            await stop.wait()

    log.info("starting API on http://%s:%d", settings.host, settings.port)
    run_until_signal(serve)


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
        if args.sim_logins:
            await _write_sim_logins(conn, site.devices, Path(args.sim_logins))

    database_command("seed", work)


async def _write_sim_logins(
    conn: asyncpg.Connection, devices: Sequence[Device], path: Path
) -> None:
    """New broker passwords for ``devices``, written to ``path`` (0600) for ``ikn sim``."""
    from ikn.broker_config import write_private
    from ikn_core import device_logins
    from ikn_store.fleet.devices import rotate_password

    logins = {d.id: await rotate_password(conn, d.id) for d in devices}
    write_private(path, device_logins.render(logins))
    print(
        f"wrote {len(logins)} device password(s) to {path} for IKN_SIM_LOGINS_FILE; "
        "run `ikn broker-config` and reload the broker to let them connect"
    )


def cmd_token_create(args: argparse.Namespace) -> None:
    """A new token, printed once: ``--person P`` makes it act for P (with P's role, and
    P's id as its name, ``P (2)`` when that is taken, unless told otherwise). It expires
    after ``--days`` (default IKN_TOKEN_DAYS for a person's, IKN_SERVICE_TOKEN_DAYS for
    one of no one; 0: never)."""
    if args.person is None and (args.name is None or args.role is None):
        raise IknError("give --person P, or --name and --role for a token of no one")
    if args.person is not None and args.role is not None:
        raise IknError("a person's token has the person's role: give --person or --role")
    config = TokenSettings.from_env()
    days = args.days
    if days is None:
        days = config.person_days if args.person is not None else config.service_days

    async def work(conn: asyncpg.Connection) -> None:
        from ikn_store.people import get_person
        from ikn_store.tokens import create_token, free_name

        role, name = args.role, args.name
        if args.person is not None:
            person = await get_person(conn, args.person)
            if person is None:
                raise IknError(f"no person {args.person!r} (ikn import people FILE loads them)")
            role = str(person.role)
            name = name or await free_name(conn, person.id)
        print(await create_token(conn, name, role, args.person, days=days or None))

    _token_command(work)


def cmd_token_list(_: argparse.Namespace) -> None:
    """Every token: name, person, role, created, expires, last used (never the token)."""

    async def work(conn: asyncpg.Connection) -> None:
        from ikn_store.tokens import list_tokens

        def when(moment: datetime | None, none: str) -> str:
            return moment.astimezone(UTC).isoformat(timespec="seconds") if moment else none

        print("name\tperson\trole\tcreated\texpires\tlast used")
        for t in await list_tokens(conn):
            print(
                f"{t.name}\t{t.person_id or '-'}\t{t.role}\t{when(t.created_at, '-')}"
                f"\t{when(t.expires_at, 'never')}\t{when(t.last_used_at, 'never')}"
            )

    _token_command(work)


def cmd_token_revoke(args: argparse.Namespace) -> None:
    async def work(conn: asyncpg.Connection) -> None:
        from ikn_store.tokens import revoke_token

        await revoke_token(conn, args.name)
        print(f"revoked token {args.name!r}")

    _token_command(work)


def cmd_token_link(args: argparse.Namespace) -> None:
    async def work(conn: asyncpg.Connection) -> None:
        from ikn_store.tokens import link_named_token

        await link_named_token(conn, args.name, args.person)
        print(f"token {args.name!r} now acts for {args.person!r}, with their role")

    _token_command(work)


def cmd_display_create(args: argparse.Namespace) -> None:
    """A new display token for one building's kiosk and desk displays, printed once."""

    async def work(conn: asyncpg.Connection) -> None:
        from ikn_service.displays import create_display

        print(await create_display(conn, args.name, args.building))

    _token_command(work)


def cmd_display_list(_: argparse.Namespace) -> None:
    """Every display token: name, building, created, last used (never the token)."""

    async def work(conn: asyncpg.Connection) -> None:
        from ikn_store.displays import list_displays

        def when(moment: datetime | None) -> str:
            return moment.astimezone(UTC).isoformat(timespec="seconds") if moment else "never"

        print("name\tbuilding\tcreated\tlast used")
        for d in await list_displays(conn):
            print(f"{d.name}\t{d.building_id}\t{when(d.created_at)}\t{when(d.last_used_at)}")

    _token_command(work)


def cmd_display_revoke(args: argparse.Namespace) -> None:
    async def work(conn: asyncpg.Connection) -> None:
        from ikn_store.displays import revoke_display_token

        await revoke_display_token(conn, args.name)
        print(f"revoked display {args.name!r}")

    _token_command(work)


def _token_command(work: Callable[[asyncpg.Connection], Awaitable[None]]) -> None:
    """``work`` on the database; a token error (a name taken, no such token or person)
    becomes the command's one-line error."""
    from ikn_core.access import TokenError

    async def guarded(conn: asyncpg.Connection) -> None:
        try:
            await work(conn)
        except TokenError as exc:
            raise IknError(exc.detail) from exc

    database_command("token", guarded)


def _days(text: str) -> int:
    if not text.isdigit() or int(text) > 3650:
        raise argparse.ArgumentTypeError(f"expected days from 0 to 3650, got {text!r}")
    return int(text)


def register(sub: Any) -> None:
    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate)
    sub.add_parser("ingest", help="run the MQTT ingest").set_defaults(func=cmd_ingest)
    sub.add_parser("api", help="run the HTTP API").set_defaults(func=cmd_api)
    seed = sub.add_parser("seed", help="load a scenario's building and devices into the database")
    seed.add_argument("--scenario", default="demo", help="builtin name or path to a JSON file")
    seed.add_argument(
        "--sim-logins",
        metavar="FILE",
        help="trials: give every device of the scenario a new broker password and write "
        "them to FILE (0600), for `ikn sim` (IKN_SIM_LOGINS_FILE)",
    )
    seed.set_defaults(func=cmd_seed)
    token = sub.add_parser("token", help="API tokens").add_subparsers(dest="action", required=True)
    create = token.add_parser("create", help="create a bearer token (printed once)")
    create.add_argument("--person", help="the person the token acts for, with their role")
    create.add_argument("--name", help="a unique name (default: the person's id, or 'id (2)'...)")
    create.add_argument("--role", choices=[r.value for r in Role], help="a token of no one's role")
    create.add_argument(
        "--days",
        type=_days,
        metavar="N",
        help="expires in N days, 0: never (default IKN_TOKEN_DAYS, 90, for a person's; "
        "IKN_SERVICE_TOKEN_DAYS, 0, for a token of no one)",
    )
    create.set_defaults(func=cmd_token_create)
    listing = token.add_parser("list", help="every token, never the token itself")
    listing.set_defaults(func=cmd_token_list)
    revoke = token.add_parser("revoke", help="delete a token: it stops working at once")
    revoke.add_argument("name")
    revoke.set_defaults(func=cmd_token_revoke)
    link = token.add_parser("link", help="make a token act for a person, with their role")
    link.add_argument("name")
    link.add_argument("--person", required=True)
    link.set_defaults(func=cmd_token_link)
    display = sub.add_parser(
        "display", help="display tokens: lobby kiosks and desk displays of one building"
    ).add_subparsers(dest="action", required=True)
    make = display.add_parser("create", help="create a display token (printed once)")
    make.add_argument("--building", required=True, help="the building whose displays it opens")
    make.add_argument("--name", required=True, help="a unique name, e.g. lobby-b1")
    make.set_defaults(func=cmd_display_create)
    display.add_parser("list", help="every display token, never the token itself").set_defaults(
        func=cmd_display_list
    )
    gone = display.add_parser("revoke", help="delete a display token: refused at once")
    gone.add_argument("name")
    gone.set_defaults(func=cmd_display_revoke)
