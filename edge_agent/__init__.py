"""The edge agent: what runs beside a device's hardware (or a simulated one).

A :class:`Driver` yields observations; an :class:`EdgeAgent` numbers them,
keeps them in an :class:`Outbox` (in memory, or durable: :class:`SqliteOutbox`)
until the broker acknowledges them, and
publishes contract-v1 batches over MQTT with QoS 1, with a retained status and
a Will. :func:`run_fleet` runs many drivers, each behind its own agent, in one
process. Imports only ``ikn_core`` and paho-mqtt: an edge device installs
without the database or web stack.
"""

from edge_agent.agent import EdgeAgent
from edge_agent.badge import badge_token
from edge_agent.config import AgentConfig, AgentStats
from edge_agent.driver import Driver
from edge_agent.errors import AgentClosedError, ConnectRefusedError, EdgeAgentError
from edge_agent.fleet import FleetStats, run_fleet
from edge_agent.outbox import MemoryOutbox, Outbox
from edge_agent.sqlite_outbox import SqliteOutbox

__all__ = [
    "AgentClosedError",
    "AgentConfig",
    "AgentStats",
    "ConnectRefusedError",
    "Driver",
    "EdgeAgent",
    "EdgeAgentError",
    "FleetStats",
    "MemoryOutbox",
    "Outbox",
    "SqliteOutbox",
    "badge_token",
    "run_fleet",
]
