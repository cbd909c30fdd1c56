"""``ikn badge enrol | revoke``, ``ikn attendance recompute`` and the morning rush
(``ikn sim --scenario rush``, alias ``ikn attendance rush``).

``ikn badge enrol --person P`` reads the card number from standard input (or
``--card N``, which a shell history keeps: prefer stdin), turns it into the badge
token with the site's key exactly as the edge agent does, and stores only the token.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from ikn.logs import configure
from ikn.running import run_until_signal
from ikn_core.errors import IknError
from ikn_core.settings import ApiSettings, BadgeSettings, DatabaseSettings, SimSettings

if TYPE_CHECKING:
    import asyncpg


def _with_pool(db: DatabaseSettings, work: Callable[[asyncpg.Pool], Awaitable[None]]) -> None:
    async def main(_stop: asyncio.Event) -> None:
        from ikn_store.migrations import migrate
        from ikn_store.pool import close_pool, create_pool

        pool = await create_pool(db.url, 2)
        try:
            async with pool.acquire() as conn:
                await migrate(conn)
            await work(pool)
        finally:
            await close_pool(pool)

    run_until_signal(main)


def _card(args: argparse.Namespace) -> str:
    card = args.card if args.card is not None else sys.stdin.readline().strip()
    if not card:
        raise IknError("no card number: give --card or one line on standard input")
    return card


def _badge_command(
    args: argparse.Namespace, act: Callable[[asyncpg.Connection, str], Awaitable[str]]
) -> None:
    """Turn the card number into its token with the site key, then ``act`` on the token."""
    settings = BadgeSettings.from_env()
    configure(settings.log, "badge")
    from edge_agent.badge import badge_token

    token = badge_token(settings.site_key, _card(args))

    async def work(pool: asyncpg.Pool) -> None:
        async with pool.acquire() as conn:
            print(await act(conn, token))

    _with_pool(settings.db, work)


def cmd_badge_enrol(args: argparse.Namespace) -> None:
    async def act(conn: asyncpg.Connection, token: str) -> str:
        from ikn_store.attendance.badges import enrol

        badge = await enrol(conn, token, args.person)
        return f"enrolled badge {badge.token} for {badge.person_id}"

    _badge_command(args, act)


def cmd_badge_revoke(args: argparse.Namespace) -> None:
    async def act(conn: asyncpg.Connection, token: str) -> str:
        from ikn_store.attendance.badges import revoke

        return "revoked" if await revoke(conn, token) else "not enrolled"

    _badge_command(args, act)


def _days(first: date, last: date) -> list[date]:
    if last < first:
        raise IknError("--to is before --from")
    return [first + timedelta(n) for n in range((last - first).days + 1)]


def cmd_recompute(args: argparse.Namespace) -> None:
    settings = ApiSettings.from_env()
    configure(settings.log, "attendance")
    days = _days(args.first, args.last)

    async def work(pool: asyncpg.Pool) -> None:
        from ikn_service.attendance import load_policies, recompute_days

        policies = load_policies(args.policy or settings.attendance_policy)
        async with pool.acquire() as conn:
            marked, done = await recompute_days(conn, policies, args.person or None, days)
        print(f"marked {marked} day(s), recomputed {done}")

    _with_pool(settings.db, work)


def cmd_disruption(args: argparse.Namespace) -> None:
    """``ikn attendance disruption``: declare an outage the platform could not see, as
    ``POST /api/v1/attendance/disruptions`` does (recorded by ``cli``)."""
    settings = ApiSettings.from_env()
    configure(settings.log, "attendance")
    from datetime import UTC, datetime

    import orjson

    from ikn_core.fields import InvalidField
    from ikn_service.disruptions import declaration, declare

    body = {"building": args.building, "start": args.start, "end": args.end, "detail": args.detail}
    try:
        cmd = declaration(body, datetime.now(UTC))
    except InvalidField as exc:
        raise IknError(f"--{exc.name}: {exc.reason}") from None

    async def work(pool: asyncpg.Pool) -> None:
        async with pool.acquire() as conn:
            try:
                window = await declare(conn, cmd, "cli")
            except InvalidField as exc:
                raise IknError(f"--{exc.name}: {exc.reason}") from None
        print(orjson.dumps(window.as_json()).decode())

    _with_pool(settings.db, work)


def cmd_rush(args: argparse.Namespace) -> None:
    """``ikn sim --scenario rush`` (alias ``ikn attendance rush``): load the rush's buildings
    and people into IKN_DATABASE_URL, replay it through one edge agent per door to
    IKN_MQTT_URL (IKN_SITE_KEY turns cards to tokens), then wait for the running ingest and
    API job to complete the daily records and check every one (exit 1 if any is wrong)."""
    badge, sim, api = BadgeSettings.from_env(), SimSettings.from_env(), ApiSettings.from_env()
    configure(sim.log, "sim")
    from ikn.benchmarks.attendance import Options, doors, prepare, replay_and_check

    speed = args.speed if args.speed is not None else 120.0
    o = Options(args.people, args.buildings, speed, args.day, sim.seed)
    from ikn_service.attendance import load_policies

    policies = load_policies(api.attendance_policy)

    async def main(_stop: asyncio.Event) -> None:
        await prepare(badge.db.url, o, badge.site_key)
        figures = await replay_and_check(
            badge.db.url, sim.mqtt, o, badge.site_key, policies=policies, within=args.wait
        )
        print(f"{figures['taps']} taps at {len(doors(o))} doors on {o.day}", flush=True)
        print(_rush_outcome(figures, args.wait), flush=True)
        if not figures["all_correct"]:
            raise IknError("not every daily record of the rush is correct")

    run_until_signal(main)


def _rush_outcome(figures: dict[str, Any], wait: float) -> str:
    lag = figures["complete_after_last_tap_s"]
    done = f"complete {lag:.3f} s after the last tap" if lag is not None else None
    done = done or f"NOT complete within {wait:g} s"
    return f"records {done}; {figures['records_ok']}/{figures['people']} correct"


def add_rush_options(parser: Any, *, speed: bool) -> None:
    """The rush's options (``ikn sim`` has its own ``--speed``)."""
    parser.add_argument("--people", type=int, default=20_000, help="ASN arriving 07:00-08:00")
    parser.add_argument("--buildings", type=int, default=4)
    parser.add_argument("--day", type=date.fromisoformat, default=date(2026, 10, 1))
    parser.add_argument(
        "--wait", type=float, default=600.0, help="seconds to wait for the records after the rush"
    )
    if speed:
        parser.add_argument("--speed", type=float, help="times real time (default 120)")


def cmd_bench_attendance(args: argparse.Namespace) -> None:
    import logging

    from ikn.benchmarks.attendance import Options, run
    from ikn.benchmarks.results import emit

    logging.basicConfig(level=logging.WARNING)
    figures = run(Options(people=args.people, buildings=args.buildings, speed=args.speed))
    emit(args, figures)


def register_bench(kinds: Any) -> None:
    """``ikn bench attendance`` (called by ikn/commands/bench.py)."""
    bench = kinds.add_parser(
        "attendance", help="morning rush of badge taps: seconds until every daily record is right"
    )
    bench.add_argument("--people", type=int, default=20_000, help="ASN arriving 07:00-08:00")
    bench.add_argument("--buildings", type=int, default=4)
    bench.add_argument("--speed", type=float, default=120.0, help="times real time")
    bench.set_defaults(func=cmd_bench_attendance)


def register(sub: Any) -> None:
    badge = sub.add_parser("badge", help="badge enrolment (token of the card, never the number)")
    actions = badge.add_subparsers(dest="action", required=True)
    enrol = actions.add_parser("enrol", help="map a card's badge token to a person")
    enrol.add_argument("--person", required=True)
    enrol.add_argument("--card", help="the card number (default: read from standard input)")
    enrol.set_defaults(func=cmd_badge_enrol)
    revoke = actions.add_parser("revoke", help="stop mapping a card's badge token")
    revoke.add_argument("--card", help="the card number (default: read from standard input)")
    revoke.set_defaults(func=cmd_badge_revoke)
    att = sub.add_parser("attendance", help="attendance chores")
    att_actions = att.add_subparsers(dest="action", required=True)
    recompute = att_actions.add_parser("recompute", help="recompute daily records of a period")
    recompute.add_argument("--from", dest="first", type=date.fromisoformat, required=True)
    recompute.add_argument("--to", dest="last", type=date.fromisoformat, required=True)
    recompute.add_argument("--person", action="append", help="only this person (repeatable)")
    recompute.add_argument("--policy", help="policy file (default: IKN_ATTENDANCE_POLICY)")
    recompute.set_defaults(func=cmd_recompute)
    outage = att_actions.add_parser(
        "disruption", help="declare an outage the platform could not see (outage grace)"
    )
    outage.add_argument("--start", required=True, help="ISO 8601 with an offset")
    outage.add_argument("--end", required=True, help="ISO 8601 with an offset, not ahead")
    outage.add_argument("--detail", required=True, help="what happened (1-1000 characters)")
    outage.add_argument("--building", help="a building id (default: all buildings)")
    outage.set_defaults(func=cmd_disruption)
    rush = att_actions.add_parser("rush", help="alias of ikn sim --scenario rush")
    add_rush_options(rush, speed=True)
    rush.set_defaults(func=cmd_rush)
