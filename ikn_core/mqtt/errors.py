"""The MQTT adapter's exceptions (the hierarchy: ``ikn_core.mqtt``)."""

from __future__ import annotations

from ikn_core.errors import IknError


class MqttError(IknError):
    """Base of every error the MQTT adapter raises on purpose."""


class ConnectRefused(MqttError):
    """The broker refused the connection; ``code`` is the CONNACK reason code and
    ``reason`` its name ("Not authorized", "Bad user name or password", ...)."""

    def __init__(self, client_id: str, code: int, reason: str) -> None:
        self.client_id = client_id
        self.code = code
        self.reason = reason
        super().__init__(f"{client_id}: broker refused the connection: {reason} ({code:#04x})")
