"""``ikn``: one command, one place that wires each service.

Each subcommand (``ikn/commands/``) reads its ``Settings`` from the environment
(docs/configuration.md), builds its parts inside the running loop and runs until
SIGINT or SIGTERM. A bad setting stops it at once with exit status 2.
"""

from __future__ import annotations

import argparse
import signal
import sys
from types import FrameType

from ikn.commands import MODULES
from ikn_core.errors import IknError, SettingsError


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ikn", description="IKN Workspace")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in MODULES:
        module.register(sub)
    return p


def _interrupted(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run(argv: list[str] | None = None) -> int:
    """Run one command; its exit status: 0, 1 (it failed), 2 (a bad setting or bad
    arguments, argparse's own), 130 (interrupted). The reason goes to stderr."""
    try:
        args = parser().parse_args(argv)
    except SystemExit as exc:  # argparse's --help (0) or usage error (2)
        return exc.code if isinstance(exc.code, int) else 2
    try:
        args.func(args)
    except KeyboardInterrupt:
        print(f"ikn {args.command}: interrupted", file=sys.stderr)
        return 130
    except SettingsError as exc:
        print(f"ikn {args.command}: {exc}", file=sys.stderr)
        return 2
    except IknError as exc:
        print(f"ikn {args.command}: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> None:
    # SIGTERM unwinds like Ctrl-C, so one-shot commands (benchmarks, imports) stop the
    # servers and children they started. Long-running services replace this handler
    # with their loop's own (ikn/running.py) and stop gracefully.
    signal.signal(signal.SIGTERM, _interrupted)
    status = run(argv)
    if status:
        sys.exit(status)
