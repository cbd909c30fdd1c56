"""The exceptions of the edge agent.

    IknError (ikn_core.errors)
    └── EdgeAgentError        base of everything the edge agent raises on purpose
        ├── ConnectRefusedError   the broker answered CONNECT with a failure reason code
        └── AgentClosedError      an observation was submitted to a closed agent

Network failures stay ``OSError`` and timeouts stay ``TimeoutError``: the agent
retries both with backoff and never lets them reach a driver.
"""

from __future__ import annotations

from ikn_core.errors import IknError


class EdgeAgentError(IknError):
    """Base of every error raised on purpose by ``edge_agent``."""


class ConnectRefusedError(EdgeAgentError):
    """The broker refused the connection; ``code`` is the MQTT reason code (CONNACK)."""

    def __init__(self, device_id: str, code: int, reason: str) -> None:
        self.device_id = device_id
        self.code = code
        self.reason = reason
        super().__init__(f"{device_id}: broker refused the connection: {reason} ({code:#04x})")


class AgentClosedError(EdgeAgentError):
    """The agent is closed (or closing) and takes no more observations."""

    def __init__(self, device_id: str) -> None:
        self.device_id = device_id
        super().__init__(f"{device_id}: the edge agent is closed")
