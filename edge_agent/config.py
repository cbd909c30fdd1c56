"""What an edge agent can be told (:class:`AgentConfig`) and what it can tell
(:class:`AgentStats`): plain values, checked when made."""

from __future__ import annotations

from dataclasses import dataclass

FIRMWARE = "ikn-edge-agent/0.1"


@dataclass(frozen=True, slots=True)
class AgentConfig:
    """How an agent batches, buffers and (re)connects; the defaults suit a desk sensor."""

    fw: str = FIRMWARE
    outbox_capacity: int = 10_000
    batch_max_readings: int = 100  # at most 1000, which keeps a batch far below 256 KiB
    batch_latency_s: float = 0.2
    batch_max_bytes: int = 256 * 1024  # a batch over it is split (contract: at most 256 KiB)
    max_in_flight: int = 8  # unacknowledged batches
    keepalive_s: int = 30
    connect_timeout_s: float = 10.0
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 60.0
    close_timeout_s: float = 5.0  # for flushing the outbox on close
    status_interval_s: float = 60.0  # the retained online status is re-sent this often
    # End-to-end acknowledgement: keep each reading until the platform's stored notice
    # (not the broker's PUBACK) confirms it; resend after stored_timeout_s without one,
    # the wait doubling up to stored_timeout_max_s. Needs an ingest that publishes the
    # notices (IKN_INGEST_STORED_NOTICES=on, its default); docs/edge-agent.md.
    await_stored: bool = False
    stored_timeout_s: float = 30.0
    stored_timeout_max_s: float = 300.0
    max_unconfirmed: int = 200_000  # sent and not yet confirmed: then wait for notices

    def __post_init__(self) -> None:
        problems = [
            name
            for name, ok in (
                ("fw (1-64 characters)", 1 <= len(self.fw) <= 64),
                ("outbox_capacity >= 1", self.outbox_capacity >= 1),
                ("batch_max_readings in 1..1000", 1 <= self.batch_max_readings <= 1000),
                ("batch_latency_s > 0", self.batch_latency_s > 0),
                ("batch_max_bytes in 1024..262144", 1024 <= self.batch_max_bytes <= 262_144),
                ("status_interval_s > 0", self.status_interval_s > 0),
                ("max_in_flight >= 1", self.max_in_flight >= 1),
                ("keepalive_s in 5..65535", 5 <= self.keepalive_s <= 65535),
                ("connect_timeout_s > 0", self.connect_timeout_s > 0),
                ("reconnect_min_s > 0", self.reconnect_min_s > 0),
                (
                    "reconnect_max_s >= reconnect_min_s",
                    self.reconnect_max_s >= self.reconnect_min_s,
                ),
                ("close_timeout_s >= 0", self.close_timeout_s >= 0),
                ("stored_timeout_s > 0", self.stored_timeout_s > 0),
                ("max_unconfirmed >= 1", self.max_unconfirmed >= 1),
                (
                    "stored_timeout_max_s >= stored_timeout_s",
                    self.stored_timeout_max_s >= self.stored_timeout_s,
                ),
            )
            if not ok
        ]
        if problems:
            raise ValueError(f"AgentConfig needs {', '.join(problems)}")


@dataclass(frozen=True, slots=True)
class AgentStats:
    """A snapshot of one agent's counters."""

    device_id: str
    connected: bool
    connects: int  # successful connections so far
    outbox: int  # readings held, pending or in flight
    in_flight: int  # batches published and not yet acknowledged
    delivered: int  # readings acknowledged by the broker
    dropped: int  # readings lost because the outbox was full
    rejected: int  # observations that did not fit the contract
    refused: int  # readings the broker refused (MQTT 5 PUBACK failure)
    commands: int = 0  # down commands received and understood
    malformed_commands: int = 0  # down messages that did not fit the contract
    unconfirmed: int = 0  # (await_stored) readings sent, not yet confirmed stored
    confirmed: int = 0  # (await_stored) readings forgotten on a stored notice
    resent: int = 0  # (await_stored) readings sent again for want of a stored notice
