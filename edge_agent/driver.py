"""What feeds an edge agent: a driver for one device's hardware.

A driver is an async iterator of :class:`ikn_core.contract.Observation` for
one ``device_id``; the agent numbers, validates, stores and publishes what it
yields. Drivers know nothing of MQTT, so the same agent runs a simulated device
(``firmware_sim``) or, later, a serial line-protocol driver for real sensors.
A driver that ends means the device is done: the agent then flushes and closes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from ikn_core.contract import Observation


class Driver(Protocol):
    """One device's source of observations (structural: no base class needed)."""

    @property
    def device_id(self) -> str:
        """The device's id, as registered (``ikn_core.contract.identifiers.ID``), also its
        MQTT client id."""
        ...

    def __aiter__(self) -> AsyncIterator[Observation]:
        """Observations in the order the device made them; an async generator is ideal."""
        ...
