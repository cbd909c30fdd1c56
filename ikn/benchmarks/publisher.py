"""The benchmark's publisher, run as its own process:

    python -m ikn.benchmarks.publisher PORT DEVICES READINGS BATCH STREAM

Publishes READINGS desk readings from DEVICES devices (``bench-0000``...), BATCH a
message, QoS 1, stamping each reading with the wall clock as it is sent, waits for
every PUBACK, and prints ``{"first": t, "last": t, "messages": n}`` (epoch seconds).
"""

from __future__ import annotations

import sys
import threading
import time

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

MAX_INFLIGHT = 1000


def device_id(n: int) -> str:
    return f"bench-{n:04d}"


def main() -> None:
    port, devices, readings, batch = (int(a) for a in sys.argv[1:5])
    stream = sys.argv[5]
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{stream[:8]}")
    client.max_inflight_messages_set(MAX_INFLIGHT)
    client.max_queued_messages_set(0)
    window = threading.Semaphore(MAX_INFLIGHT)  # a permit per message not yet acknowledged
    client.on_publish = lambda *_: window.release()
    client.connect("127.0.0.1", port)
    client.loop_start()
    topics = [f"ikn/v1/dev/{device_id(d)}/up" for d in range(devices)]
    messages = -(-readings // batch)
    first = time.time()
    seq = 0
    for m in range(messages):
        now = int(time.time() * 1000)
        count = min(batch, readings - seq)
        body = [
            {"seq": seq + i, "ts": now, "kind": "desk_occupancy", "occupied": (seq + i) % 2 == 0}
            for i in range(count)
        ]
        seq += count
        if not window.acquire(timeout=60):
            raise SystemExit("the broker stopped acknowledging")
        payload = orjson.dumps({"v": 1, "stream": stream, "readings": body})
        client.publish(topics[m % devices], payload, qos=1)
    for _ in range(MAX_INFLIGHT):  # all permits back: every message was acknowledged
        if not window.acquire(timeout=60):
            raise SystemExit("the broker stopped acknowledging")
    last = time.time()
    client.disconnect()
    client.loop_stop()
    print(orjson.dumps({"first": first, "last": last, "messages": messages}).decode())


if __name__ == "__main__":
    main()
