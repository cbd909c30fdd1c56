"""``ikn broker-sync``: Mosquitto's ``passwd`` and ``acl`` follow the registry by themselves.

The triggers of ``broker_accounts_notify()`` (ikn_store/sql/fleet/) notify
``ikn_broker_accounts`` at the commit of any change to
who may log in (a device disabled through ``PATCH /api/v1/devices/{id}``, a password
rotated, an account created or removed). This service LISTENs on that channel, writes
the files again (``ikn.broker_config``) and, when their text changed, sends SIGHUP to
the broker whose pid is in ``pid_file``: Mosquitto re-reads them and disconnects every
client whose account is gone or whose password no longer matches.

Notifications sent while the service is not connected are lost, so it also writes the
files at every (re)connection and every ``resync_s``; a reload that failed (no pid file
yet, the broker restarting) is tried again every ``RETRY_RELOAD_S``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from ikn.broker_config import Account, write_changed
from ikn_store.fleet.broker_auth import ServiceRole, broker_users
from ikn_store.listen import Listener

log = logging.getLogger(__name__)

CHANNEL = "ikn_broker_accounts"
DEBOUNCE_S = 0.2  # a burst of changes (an import of devices) becomes one rewrite
RETRY_RELOAD_S = 1.0
RECONNECT_S = (1.0, 2.0, 5.0, 10.0, 30.0)


@dataclass(slots=True)
class BrokerSync:
    database_url: str
    out_dir: Path
    pid_file: Path | None = None  # None: the operator reloads the broker
    trial: bool = False
    resync_s: float = 60.0
    _reload_pending: bool = False

    async def run(self, stop: asyncio.Event) -> None:
        listener = Listener(self.database_url, {CHANNEL: self._changed})
        await listener.run(
            stop,
            lambda stop: self._connected(listener, stop),
            retry_s=RECONNECT_S,
            message="cannot sync the broker files (%s); again in %.0f s",
        )

    def _changed(self, _payload: str) -> None:
        pass  # (the session's wait returns; what changed is read again in full)

    async def _connected(self, listener: Listener, stop: asyncio.Event) -> None:
        async with listener.connect(stop) as session:
            await session.listen()
            log.info("listening for broker account changes on %s", CHANNEL)
            while not session.done:
                session.clear()  # before reading: a change committed meanwhile comes again
                await self.sync(session.conn)
                await session.wait(RETRY_RELOAD_S if self._reload_pending else self.resync_s)
                if session.notified:
                    await asyncio.sleep(DEBOUNCE_S)

    async def sync(self, conn: asyncpg.Connection) -> None:
        """Write the files that changed and reload the broker if any did."""
        accounts, left_out = await broker_accounts(conn, trial=self.trial)
        if write_changed(self.out_dir, accounts):
            devices = sum(1 for a in accounts if a.service is None)
            log.info(
                "wrote passwd and acl: %d service account(s), %d enabled device(s)%s",
                len(accounts) - devices,
                devices,
                f"; left out {', '.join(left_out)} (trials only)" if left_out else "",
            )
            self._reload_pending = True
        if self._reload_pending:
            self._reload_pending = not self._reload()

    def _reload(self) -> bool:
        """SIGHUP to the broker of ``pid_file``; whether it was sent."""
        if self.pid_file is None:
            log.warning("reload the broker now (no --pid-file): SIGHUP to Mosquitto")
            return True
        try:
            pid = int(self.pid_file.read_text(encoding="ascii").strip())
            os.kill(pid, signal.SIGHUP)
        except (OSError, ValueError) as exc:
            log.warning(
                "cannot reload the broker through %s (%s); trying again", self.pid_file, exc
            )
            return False
        log.info("broker (pid %d) reloaded", pid)
        return True


async def broker_accounts(
    conn: asyncpg.Connection, *, trial: bool = False
) -> tuple[list[Account], list[str]]:
    """The accounts the broker should admit, and the sim accounts left out (all of
    them unless ``trial``: they may publish for every device)."""
    users = await broker_users(conn)
    left_out = [u.username for u in users if u.role is ServiceRole.SIM and not trial]
    accounts = [
        Account(u.username, u.password_hash, u.role.value if u.role else None)
        for u in users
        if u.username not in left_out
    ]
    return accounts, left_out
