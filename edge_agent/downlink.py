"""What the platform tells a device on ``ikn/v1/dev/{id}/down`` (contract: ikn_core.contract.down).

- ``config``: the agent applies the batch limits itself (``apply_config``) and hands
  ``sample_interval_s`` to the driver; nothing restarts.
- ``identify`` and ``reboot``: handed to the driver's ``on_command``.
- ``display``: handed to the driver's ``show``; the newest ``ts`` wins, no result.
- ``stored`` (a notice, not a command): handed to ``stored`` (the agent's uplink
  forgets the readings it names); not counted as a command, no result.

Each command but ``display`` is answered with a ``command_result`` reading through the
outbox (``report``), so the answer is as durable as any reading. A malformed message
is counted and logged (first and every 100th at WARNING), answered with a failure
when it carries a usable ``id``, and never stops the agent; neither does a driver
that raises.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from edge_agent.config import AgentConfig
from ikn_core.contract import (
    ConfigCommand,
    DisplayCommand,
    DownCommand,
    Observation,
    StoredNotice,
    command_id_of,
    decode_down,
)
from ikn_core.contract.payload import DETAIL_MAX
from ikn_core.errors import ContractError

log = logging.getLogger(__name__)

Report = Callable[[str, bool, str | None], None]


class Downlink:
    """Turns ``down`` payloads into actions and results, for one agent."""

    def __init__(
        self,
        device_id: str,
        apply_config: Callable[[ConfigCommand], None],
        report: Report,
        stored: Callable[[StoredNotice], None] = lambda _notice: None,
    ) -> None:
        self.device_id = device_id
        self.driver: Any = None  # set by the agent's pump; may lack on_command/show
        self.received = 0
        self.malformed = 0
        self._apply_config = apply_config
        self._report = report
        self._stored = stored
        self._shown_ts = -1

    def handle(self, payload: bytes) -> None:
        try:
            command = decode_down(payload)
        except ContractError as exc:
            self._malformed(payload, exc)
            return
        if isinstance(command, StoredNotice):
            self._stored(command)
            return
        self.received += 1
        if isinstance(command, DisplayCommand):
            self._show(command)
            return
        try:
            detail = self._run(command)
        except Exception as exc:  # a driver's failure is the command's, not the agent's
            log.warning("%s: command %s failed: %r", self.device_id, command.id, exc)
            self._report(command.id, False, _short(f"{type(exc).__name__}: {exc}"))
            return
        self._report(command.id, detail is None, detail)

    def _run(self, command: DownCommand) -> str | None:
        """Carry ``command`` out; None on success, else why it failed."""
        if isinstance(command, ConfigCommand):
            self._apply_config(command)
            if command.sample_interval_s is None:
                return None
        on_command = getattr(self.driver, "on_command", None)
        if on_command is None:
            return f"{command.cmd}: not supported by this device's driver"
        on_command(command)
        return None

    def _show(self, command: DisplayCommand) -> None:
        show = getattr(self.driver, "show", None)
        if show is None or command.ts < self._shown_ts:
            return  # no display, or older than what it shows
        self._shown_ts = command.ts
        try:
            show(command)
        except Exception:
            log.exception("%s: the driver failed to show %s", self.device_id, command)

    def _malformed(self, payload: bytes, exc: ContractError) -> None:
        self.malformed += 1
        level = logging.WARNING if self.malformed % 100 == 1 else logging.DEBUG
        log.log(
            level,
            "%s: malformed down message ignored (%d so far): %s",
            self.device_id,
            self.malformed,
            exc,
        )
        command_id = command_id_of(payload)
        if command_id is not None:
            self._report(command_id, False, _short(f"{exc.reason}: {exc}"))


def _short(text: str) -> str:
    """A driver's error as a ``detail`` the contract takes: no U+0000 (shown as U+FFFD,
    or the answer would be refused and lost), at most DETAIL_MAX characters."""
    text = text.replace("\x00", "\ufffd")
    return text if len(text) <= DETAIL_MAX else text[: DETAIL_MAX - 1] + "…"


def configured(config: AgentConfig, command: ConfigCommand) -> AgentConfig:
    """``config`` with the batch limits ``command`` sets (the others kept)."""
    latency_ms = command.batch_latency_ms
    return replace(
        config,
        batch_max_readings=command.batch_max_readings or config.batch_max_readings,
        batch_max_bytes=command.batch_max_bytes or config.batch_max_bytes,
        batch_latency_s=latency_ms / 1000 if latency_ms else config.batch_latency_s,
    )


def result_observation(command_id: str, ok: bool, detail: str | None, ts: int) -> Observation:
    """The ``command_result`` reading answering command ``command_id``."""
    fields: dict[str, Any] = {"command": command_id, "ok": ok}
    if detail is not None:
        fields["detail"] = detail
    return Observation("command_result", ts, fields)
