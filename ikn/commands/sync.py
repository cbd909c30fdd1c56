"""``ikn sync siasn [--dry-run]``: employee master data from BKN's SIASN into ``people``."""

from __future__ import annotations

import argparse
import asyncio
import logging
from datetime import date
from typing import Any

from ikn.logs import configure
from ikn_core.settings import SiasnSettings

log = logging.getLogger("ikn.sync")


def cmd_siasn(args: argparse.Namespace) -> None:
    import asyncpg

    from ikn_service import siasn

    settings = SiasnSettings.from_env()
    configure(settings.log, "sync")
    s = settings
    creds = siasn.Credentials(
        s.gateway_url, s.sso_url, s.client_id, s.client_secret, s.username, s.password
    )

    async def work() -> siasn.Changes:
        employees = await siasn.fetch_employees(creds, s.units, s.timeout_s)
        log.info("SIASN: %d employees in %d units", len(employees), len(s.units))
        conn = await asyncpg.connect(s.db.url)
        try:
            return await siasn.sync(conn, employees, s.agency, date.today(), args.dry_run)
        finally:
            await conn.close()

    changes = asyncio.run(work())
    for p in changes.added:
        print(f"added {p.id} {p.name} ({p.unit}, {p.role})")
    for p, fields in changes.changed:
        print(f"changed {p.id}: {', '.join(fields)}")
    for pid in changes.deactivated:
        print(f"deactivated {pid}")
    print(("dry run, nothing changed: " if args.dry_run else "") + siasn.summary(changes))


def register(sub: Any) -> None:
    sync = sub.add_parser("sync", help="synchronise master data from outside systems")
    kinds = sync.add_subparsers(dest="source", required=True)
    siasn_cmd = kinds.add_parser("siasn", help="employees from BKN's SIASN into people")
    siasn_cmd.add_argument("--dry-run", action="store_true", help="report, change nothing")
    siasn_cmd.set_defaults(func=cmd_siasn)
