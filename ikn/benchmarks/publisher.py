"""The benchmark's publisher, run as its own process:

    python -m ikn.benchmarks.publisher PORT DEVICES READINGS BATCH STREAM

Publishes READINGS desk readings from DEVICES devices (``bench-0000``...), BATCH a
message, QoS 1, stamping each reading with the wall clock as it is sent, waits for
every PUBACK, and prints ``{"first": t, "last": t, "messages": n}`` (epoch seconds).

It speaks MQTT 3.1.1 itself on one socket instead of through paho-mqtt. paho's
publish path (a message object, a lock and a thread hand-over per message) topped
out near 5,000 messages/s here at one reading a message, with more than a core
busy; the benchmark could not offer the ingest what it is meant to measure. This
loop runs on one thread: it encodes up to ``window`` PUBLISH packets, writes them
in one ``sendall``, and reads the PUBACKs that came back, checking each against
the packet ids it has outstanding. Nothing else of MQTT is needed: no
subscriptions, QoS 2, retained messages or reconnects (a lost connection ends
the run with an error). The ingest itself keeps paho-mqtt.
"""

from __future__ import annotations

import select
import socket
import sys
import time
from collections.abc import Iterator

import orjson

MAX_INFLIGHT = 1000  # PUBLISHes sent and not yet acknowledged, at most
# Packets encoded, then written at once, at most: so each is stamped well under a
# millisecond before it leaves (at one reading a message) and few system calls are made.
CHUNK_PACKETS = 100
CHUNK_BYTES = 1 << 16
ACK_TIMEOUT_S = 60.0

# MQTT 3.1.1 control packet first bytes (type << 4 | flags), spec section 2.2.
_CONNECT = 0x10
_CONNACK = 0x20
_PUBLISH_QOS1 = 0x32  # PUBLISH, DUP 0, QoS 1, RETAIN 0
_PUBACK = 0x40
_DISCONNECT = b"\xe0\x00"


class PublishError(RuntimeError):
    """The broker refused the connection, closed it, or stopped acknowledging."""


def device_id(n: int) -> str:
    return f"bench-{n:04d}"


def remaining_length(n: int) -> bytes:
    """The fixed header's Remaining Length: 7 bits a byte, low first, high bit = more."""
    out = bytearray()
    while True:
        n, digit = n >> 7, n & 0x7F
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def utf8(text: str) -> bytes:
    """An MQTT UTF-8 string: two bytes of length, then the bytes."""
    raw = text.encode()
    return len(raw).to_bytes(2, "big") + raw


def connect_packet(client_id: str) -> bytes:
    # Variable header: protocol name, level 4 (3.1.1), flags (clean session only),
    # keep alive 0 (off: the run sends all the time, and a stall is our own timeout).
    body = utf8("MQTT") + bytes([4, 0x02]) + (0).to_bytes(2, "big") + utf8(client_id)
    return bytes([_CONNECT]) + remaining_length(len(body)) + body


def publish_packet(topic: bytes, packet_id: int, payload: bytes) -> bytes:
    """A QoS 1 PUBLISH; ``topic`` is already an MQTT string (``utf8``)."""
    size = len(topic) + 2 + len(payload)
    return b"".join(
        (
            bytes([_PUBLISH_QOS1]),
            remaining_length(size),
            topic,
            packet_id.to_bytes(2, "big"),
            payload,
        )
    )


class Acks:
    """Reads the broker's packets and keeps track of the PUBLISHes it has not
    acknowledged yet (by packet id: every PUBACK must name one of them)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = b""
        self.outstanding: set[int] = set()

    def wait(self, timeout: float) -> None:
        """Read what has arrived, waiting up to ``timeout`` for something."""
        if not select.select([self._sock], [], [], timeout)[0]:
            raise PublishError(f"the broker sent nothing for {timeout:.0f} s")
        data = self._sock.recv(1 << 16)
        if not data:
            raise PublishError("the broker closed the connection")
        self._buffer += data
        self._consume()

    def _consume(self) -> None:
        buf, pos = self._buffer, 0
        while len(buf) - pos >= 2:
            first, length, header = buf[pos], 0, 1
            while True:  # Remaining Length, at most four bytes
                if pos + header >= len(buf):
                    self._buffer = buf[pos:]
                    return
                byte = buf[pos + header]
                length |= (byte & 0x7F) << (7 * (header - 1))
                header += 1
                if not byte & 0x80:
                    break
            end = pos + header + length
            if end > len(buf):
                break
            if first != _PUBACK or length != 2:
                raise PublishError(f"unexpected packet from the broker: {buf[pos:end]!r}")
            packet_id = int.from_bytes(buf[end - 2 : end], "big")
            if packet_id not in self.outstanding:
                raise PublishError(f"PUBACK for packet id {packet_id}, which is not in flight")
            self.outstanding.remove(packet_id)
            pos = end
        self._buffer = buf[pos:]


def connect(port: int, client_id: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=ACK_TIMEOUT_S)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(connect_packet(client_id))
    connack = b""
    while len(connack) < 4:
        more = sock.recv(4 - len(connack))
        if not more:
            raise PublishError("the broker closed the connection before CONNACK")
        connack += more
    if connack[0] != _CONNACK or connack[3] != 0:
        raise PublishError(f"the broker refused the connection: {connack!r}")
    return sock


def packet_ids() -> Iterator[int]:
    """1, 2, ... 65535, 1, ... (0 is not a valid packet id)."""
    while True:
        yield from range(1, 1 << 16)


def publish(port: int, devices: int, readings: int, batch: int, stream: str) -> dict[str, float]:
    sock = connect(port, f"bench-pub-{stream[:8]}")
    acks = Acks(sock)
    topics = [utf8(f"ikn/v1/dev/{device_id(d)}/up") for d in range(devices)]
    ids = packet_ids()
    messages = -(-readings // batch)
    dumps, now_ms = orjson.dumps, time.time
    first = time.time()
    seq = m = 0
    while m < messages:
        while len(acks.outstanding) >= MAX_INFLIGHT:
            acks.wait(ACK_TIMEOUT_S)
        packets, size = [], 0
        for _ in range(min(CHUNK_PACKETS, MAX_INFLIGHT - len(acks.outstanding), messages - m)):
            now = int(now_ms() * 1000)
            count = min(batch, readings - seq)
            body = [
                {"seq": s, "ts": now, "kind": "desk_occupancy", "occupied": s % 2 == 0}
                for s in range(seq, seq + count)
            ]
            payload = dumps({"v": 1, "stream": stream, "readings": body})
            packet_id = next(ids)
            acks.outstanding.add(packet_id)
            packets.append(publish_packet(topics[m % devices], packet_id, payload))
            size += len(packets[-1])
            seq += count
            m += 1
            if size >= CHUNK_BYTES:
                break
        sock.sendall(b"".join(packets))
        if select.select([sock], [], [], 0)[0]:
            acks.wait(0)
    while acks.outstanding:  # every message acknowledged
        acks.wait(ACK_TIMEOUT_S)
    last = time.time()
    sock.sendall(_DISCONNECT)
    sock.close()
    return {"first": first, "last": last, "messages": messages}


def main() -> None:
    port, devices, readings, batch = (int(a) for a in sys.argv[1:5])
    try:
        result = publish(port, devices, readings, batch, sys.argv[5])
    except (PublishError, OSError) as exc:
        raise SystemExit(f"publisher: {exc}") from exc
    print(orjson.dumps(result).decode())


if __name__ == "__main__":
    main()
