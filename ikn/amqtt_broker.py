"""The embedded demo broker: ``python -m ikn.amqtt_broker --port 1883``.

Used by ``ikn demo`` where Mosquitto is not installed. It speaks MQTT 3.1.1,
listens on loopback only and allows anonymous clients: a first look, not production.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from amqtt.broker import Broker

if TYPE_CHECKING:
    from _collections_abc import dict_items


class _SnapshotDict(dict[str, Any]):
    """Iterates over a copy. amqtt 0.12.1 loops over its subscriptions with an
    ``await`` inside, when a client connects (the retained messages of a pre-existing
    session) and when it broadcasts a message; another client subscribing meanwhile
    ended the loop with "dictionary changed size during iteration", dropping the new
    client's session, so a message published by hand could vanish (seen in the demo
    test)."""

    def __iter__(self) -> Iterator[str]:
        return iter(list(self.keys()))

    def items(self) -> dict_items[str, Any]:
        return dict(self).items()


async def serve(port: int) -> None:
    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }
    broker = Broker(config)
    broker._subscriptions = _SnapshotDict(broker._subscriptions)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await broker.start()
    try:
        await stop.wait()
    finally:
        await broker.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=1883)
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    asyncio.run(serve(args.port))


if __name__ == "__main__":
    main()
