"""The exceptions of the edge agent.

    IknError (ikn_core.errors)
    ├── EdgeAgentError        base of everything the edge agent raises on purpose
    │   └── AgentClosedError      an observation was submitted to a closed agent
    └── MqttError (ikn_core.mqtt)
        └── ConnectRefusedError   the broker answered CONNECT with a failure reason code
                                  (``ikn_core.mqtt.ConnectRefused``: ``code``, ``reason``)

Network failures stay ``OSError`` and timeouts stay ``TimeoutError``: the agent
retries all three with backoff, keeps the last in ``EdgeAgent.last_error``, and
never lets them reach a driver.
"""

from __future__ import annotations

from ikn_core.errors import IknError
from ikn_core.mqtt import ConnectRefused as ConnectRefusedError

__all__ = ["AgentClosedError", "ConnectRefusedError", "EdgeAgentError"]


class EdgeAgentError(IknError):
    """Base of every error raised on purpose by ``edge_agent``."""


class AgentClosedError(EdgeAgentError):
    """The agent is closed (or closing) and takes no more observations."""

    def __init__(self, device_id: str) -> None:
        self.device_id = device_id
        super().__init__(f"{device_id}: the edge agent is closed")
