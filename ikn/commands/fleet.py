"""``ikn device add|disable|enable|rotate-password``, ``ikn broker-account``,
``ikn broker-config`` and ``ikn broker-sync``: the device fleet and the broker's
authentication and authorisation."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ikn.running import database_command
from ikn_core.domain import Device, DeviceKind

if TYPE_CHECKING:
    import asyncpg

    from ikn.broker_config import Account

SERVICE_ROLES = ("ingest", "api", "sim")
# Where a change reaches the broker: a running broker-sync applies it within a second.
REACHES_BROKER = "ikn broker-sync applies it (else: ikn broker-config and reload the broker)"
SIM_REFUSED = (
    "a sim account may publish for every device, so it is for trials only, never "
    "production (simulated devices can log in as themselves: ikn seed --sim-logins)"
)


def _device(args: argparse.Namespace) -> Device:
    try:
        return Device(args.id, DeviceKind(args.kind), args.building, args.zone, args.desk)
    except ValueError as exc:
        sys.exit(f"ikn device add: {exc}")


def cmd_device_add(args: argparse.Namespace) -> None:
    device = _device(args)

    async def work(conn: asyncpg.Connection) -> None:
        from ikn_core.fleet import DeviceError
        from ikn_store.fleet.devices import register_device

        try:
            password = await register_device(conn, device, args.expected_interval)
        except DeviceError as exc:
            sys.exit(f"ikn device add: {args.id}: {exc}")
        print(f"registered {device.id}; MQTT user name {device.id}, password (shown once):")
        print(password)
        print(REACHES_BROKER, file=sys.stderr)

    database_command("device", work)


def _cmd_set_enabled(enabled: bool) -> Any:
    def cmd(args: argparse.Namespace) -> None:
        async def work(conn: asyncpg.Connection) -> None:
            from ikn_core.fleet import DeviceError
            from ikn_service.fleet import ChangeDevice, change_device

            try:
                await change_device(conn, ChangeDevice(args.id, enabled=enabled))
            except DeviceError as exc:
                sys.exit(f"ikn device: {exc}")
            print(f"{args.id} {'enabled' if enabled else 'disabled'}; {REACHES_BROKER}")

        database_command("device", work)

    return cmd


def cmd_device_rotate_password(args: argparse.Namespace) -> None:
    async def work(conn: asyncpg.Connection) -> None:
        from ikn_core.fleet import DeviceError
        from ikn_store.fleet.devices import rotate_password

        try:
            password = await rotate_password(conn, args.id)
        except DeviceError as exc:
            sys.exit(f"ikn device: {exc}")
        print(f"{args.id}: new MQTT password (shown once); {REACHES_BROKER}:", file=sys.stderr)
        print(password)

    database_command("device", work)


def cmd_broker_sync(args: argparse.Namespace) -> None:
    from ikn.broker_sync import BrokerSync
    from ikn.logs import configure
    from ikn.running import run_until_signal
    from ikn_core.settings import MigrateSettings

    settings = MigrateSettings.from_env()
    configure(settings.log, "broker-sync")
    pid_file = Path(args.pid_file) if args.pid_file else None
    sync = BrokerSync(settings.db.url, Path(args.out), pid_file, args.trial, args.resync_s)
    run_until_signal(sync.run)


def cmd_device_move(args: argparse.Namespace) -> None:
    async def work(conn: asyncpg.Connection) -> None:
        from ikn_core.fleet import DeviceError
        from ikn_service.fleet import ChangeDevice, change_device

        try:
            await change_device(conn, ChangeDevice(args.id, args.building, args.zone, args.desk))
        except DeviceError as exc:
            sys.exit(f"ikn device: {exc}")
        place = " / ".join(p for p in (args.building, args.zone, args.desk) if p)
        print(f"{args.id} moved to {place}")

    database_command("device", work)


def cmd_broker_account(args: argparse.Namespace) -> None:
    from ikn_store.fleet.broker_auth import ServiceAccount, ServiceRole

    try:
        account = ServiceAccount.of(ServiceRole(args.role), args.name)
    except ValueError as exc:
        sys.exit(f"ikn broker-account: {exc}")
    if account.role is ServiceRole.SIM and not args.trial and not args.remove:
        print(f"ikn broker-account: {SIM_REFUSED}; pass --trial to create it", file=sys.stderr)
        sys.exit(2)

    async def work(conn: asyncpg.Connection) -> None:
        from ikn_store.fleet.broker_auth import remove_service_account, set_service_password

        if args.remove:
            if not await remove_service_account(conn, account):
                sys.exit(f"ikn broker-account: no account {account.username}")
            print(f"removed {account.username}; {REACHES_BROKER}")
            return
        password = await set_service_password(conn, account)
        print(f"MQTT user name {account.username}, password (shown once):")
        print(password)

    database_command("broker-account", work)


def cmd_broker_config(args: argparse.Namespace) -> None:
    async def work(conn: asyncpg.Connection) -> None:
        accounts, passwd, acl = await write_broker_files(conn, Path(args.out), trial=args.trial)
        services = sum(1 for a in accounts if a.service)
        print(f"wrote {passwd} and {acl}: {services} service account(s), ", end="")
        print(f"{len(accounts) - services} enabled device(s); reload the broker (SIGHUP)")

    database_command("broker-config", work)


async def write_broker_files(
    conn: asyncpg.Connection, out_dir: Path, *, trial: bool = False
) -> tuple[list[Account], Path, Path]:
    """Mosquitto's ``passwd`` and ``acl`` in ``out_dir``, from the registry; ``sim``
    accounts only with ``trial`` (they may publish for every device)."""
    from ikn.broker_config import write_config
    from ikn.broker_sync import broker_accounts

    accounts, left_out = await broker_accounts(conn, trial=trial)
    if left_out:
        print(f"left out {', '.join(left_out)}: {SIM_REFUSED} (--trial keeps it)", file=sys.stderr)
    passwd, acl = write_config(out_dir, accounts)
    return accounts, passwd, acl


def register(sub: Any) -> None:
    device = sub.add_parser("device", help="the device fleet").add_subparsers(
        dest="action", required=True
    )
    add = device.add_parser("add", help="register a device; prints its MQTT password once")
    add.add_argument("--id", required=True)
    add.add_argument("--kind", required=True, choices=[k.value for k in DeviceKind])
    add.add_argument("--building", required=True)
    add.add_argument("--zone")
    add.add_argument("--desk")
    add.add_argument(
        "--expected-interval", type=int, default=300, help="seconds between reports (alerts)"
    )
    add.set_defaults(func=cmd_device_add)
    for name, enabled in (("disable", False), ("enable", True)):
        p = device.add_parser(name, help=f"{name} a device (takes effect at broker-config)")
        p.add_argument("--id", required=True)
        p.set_defaults(func=_cmd_set_enabled(enabled))
    rotate = device.add_parser(
        "rotate-password", help="give a device a new MQTT password (printed once)"
    )
    rotate.add_argument("--id", required=True)
    rotate.set_defaults(func=cmd_device_rotate_password)
    move = device.add_parser("move", help="place a device in another building, zone or desk")
    move.add_argument("--id", required=True)
    move.add_argument("--building", required=True)
    move.add_argument("--zone")
    move.add_argument("--desk")
    move.set_defaults(func=cmd_device_move)
    account = sub.add_parser(
        "broker-account", help="create or rotate a service's broker account (password once)"
    )
    account.add_argument("--role", required=True, choices=SERVICE_ROLES)
    account.add_argument(
        "--name",
        help="the account's name, svc.<name>: the role (default) or <role>-<suffix>, e.g. "
        "ingest-2; one account per process connected at the same time (each ingest replica)",
    )
    account.add_argument(
        "--remove", action="store_true", help="remove the account (a replica gone for good)"
    )
    account.add_argument(
        "--trial", action="store_true", help="allow --role sim (never in production)"
    )
    account.set_defaults(func=cmd_broker_account)
    config = sub.add_parser(
        "broker-config", help="write Mosquitto's passwd and acl from the registry"
    )
    config.add_argument("--out", required=True, help="directory for passwd and acl")
    config.add_argument(
        "--trial", action="store_true", help="also admit sim accounts (never in production)"
    )
    config.set_defaults(func=cmd_broker_config)
    sync = sub.add_parser(
        "broker-sync",
        help="keep passwd and acl in step with the registry, reloading the broker (a service)",
    )
    sync.add_argument("--out", required=True, help="directory for passwd and acl")
    sync.add_argument("--pid-file", help="Mosquitto's pid_file: SIGHUP it after each change")
    sync.add_argument(
        "--resync-s", type=float, default=60.0, help="write the files again this often anyway"
    )
    sync.add_argument(
        "--trial", action="store_true", help="also admit sim accounts (never in production)"
    )
    sync.set_defaults(func=cmd_broker_sync)
