"""The one MQTT adapter: a paho-mqtt 2.x client driven by the asyncio loop
(``client``, ``bridge``, ``connection``, ``errors``).

The edge agent, the ingest and the API's device commands all connect through
:class:`MqttConnection`. It owns what they used to set up three times:

- credentials (the URL's user name and password), TLS (``mqtts://``: the broker's
  certificate checked against ``IKN_MQTT_CA_FILE`` or the system's CAs, its host
  name against the URL) and the protocol (MQTT 5 or 3.1.1, ``IKN_MQTT_PROTOCOL``);
- the session (:class:`Session`: client id, clean or persistent with a session
  expiry, keepalive, manual QoS 1 acks, paho's in-flight limit, a Will);
- the event-loop bridge (:class:`LoopBridge`), connecting and reconnecting with
  backoff (:class:`Backoff`), CONNACK reason codes as :class:`ConnectRefused`,
  on-message dispatch, PUBACKs, and a graceful disconnect.

Why paho's external-loop API rather than ``loop_start`` (a network thread per client):
one process runs thousands of agents (``firmware_sim`` with 5,000 devices), and paho's
own loop waits with ``select()``, which cannot watch a descriptor numbered 1024 or
above ("filedescriptor out of range", connections reported lost over and over);
5,000 threads waking every second contend for the GIL. For the ingest, at one reading
a message, the thread cost more than the ingest's own work (124 µs of CPU a message
against 77 µs from the loop: two threads taking turns on the GIL, a ``select`` and a
wake-up byte per ``ack()``). So the asyncio loop (epoll) watches each client's one
socket and calls ``loop_read``/``loop_write``, and ``loop_misc`` (keepalive) runs
every ``tick_s``: every paho callback runs on the loop thread, with no locks and no
thread hand-over.

The one blocking step is paho's ``reconnect()`` (name lookup, TCP connect, TLS
handshake, CONNECT queued): it runs in an executor thread, bounded by
``Session.connect_timeout_s``. While it runs the socket is not watched, and socket
callbacks paho makes from that thread are ignored; the socket is watched once
``reconnect()`` has returned, from the loop thread. A failed TLS handshake closes its
socket (:class:`_Client`: paho 2.x leaves it to the garbage collector, one leaked
socket per retry of a device whose broker certificate does not verify).

Exceptions::

    IknError (ikn_core.errors)
    └── MqttError                 base of what this adapter raises on purpose
        └── ConnectRefused        CONNACK with a failure reason code (``code``, ``reason``)

A network failure stays ``OSError`` (a certificate that does not verify is
``ssl.SSLCertVerificationError``), a timeout ``TimeoutError``; the connection keeps
the last one in ``last_error`` and retries with backoff.
"""

from ikn_core.mqtt.bridge import LoopBridge, ReadGate
from ikn_core.mqtt.client import Session, Will, make_client
from ikn_core.mqtt.connection import TICK_S, Backoff, Handler, MqttConnection
from ikn_core.mqtt.errors import ConnectRefused, MqttError

__all__ = [
    "TICK_S",
    "Backoff",
    "ConnectRefused",
    "Handler",
    "LoopBridge",
    "MqttConnection",
    "MqttError",
    "ReadGate",
    "Session",
    "Will",
    "make_client",
]
