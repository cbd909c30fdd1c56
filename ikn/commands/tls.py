"""``ikn tls init``: a private CA and the broker's TLS certificate (deploy/mosquitto/README.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def cmd_tls_init(args: argparse.Namespace) -> None:
    from ikn.tls import init

    try:
        files = init(Path(args.out), args.host, server_days=args.days)
    except (ValueError, FileExistsError) as exc:
        sys.exit(f"ikn tls init: {exc}")
    hosts = ", ".join(args.host)
    print(f"wrote {files.ca_cert}, {files.server_cert} and {files.server_key} for {hosts}")
    print(f"keep {files.ca_key} offline: it signs the next server certificate", file=sys.stderr)


def register(sub: Any) -> None:
    tls = sub.add_parser("tls", help="TLS certificates").add_subparsers(
        dest="action", required=True
    )
    init = tls.add_parser("init", help="a private CA and a server certificate signed by it")
    init.add_argument(
        "--out", required=True, help="directory for ca.crt, ca.key, server.crt, server.key"
    )
    init.add_argument(
        "--host",
        required=True,
        action="append",
        help="a DNS name or IP address clients reach the broker by (repeat for more)",
    )
    init.add_argument("--days", type=int, default=825, help="validity of the server certificate")
    init.set_defaults(func=cmd_tls_init)
