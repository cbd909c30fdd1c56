"""A paho client made for one :class:`Session`: protocol, credentials, TLS (with the
socket-leak fix), session, Will. It connects nothing."""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass

from paho.mqtt.client import Client
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ikn_core.settings import MqttSettings


@dataclass(frozen=True, slots=True)
class Will:
    """What the broker publishes when the client vanishes without DISCONNECT."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


@dataclass(frozen=True, slots=True)
class Session:
    """How one client connects. ``persistent``: the broker keeps the session while the
    client is away (3.1.1: clean session off; 5: clean start off and
    ``session_expiry_s``). ``max_inflight``: paho's window of unacknowledged QoS 1
    publishes (0: none, the caller bounds it). ``read_burst``: packets read per
    wake-up at most."""

    client_id: str
    keepalive_s: int = 30
    connect_timeout_s: float = 10.0
    persistent: bool = False
    session_expiry_s: int = 0
    manual_ack: bool = False
    max_inflight: int = 20
    will: Will | None = None
    read_burst: int = 1


class _Client(Client):
    """paho's client, but a failed TLS handshake closes its socket: paho 2.x leaves the
    wrapped socket to the garbage collector, one leaked socket per retry of a device
    whose broker certificate does not verify."""

    def _ssl_wrap_socket(self, tcp_sock: socket.socket) -> ssl.SSLSocket:
        context = self._ssl_context
        assert context is not None  # tls_set_context ran
        ssl_sock = context.wrap_socket(
            tcp_sock, server_hostname=self._host, do_handshake_on_connect=False
        )
        try:
            ssl_sock.settimeout(self._connect_timeout)
            ssl_sock.do_handshake()  # the context checks the host name (check_hostname)
        except BaseException:
            ssl_sock.close()
            raise
        return ssl_sock


def make_client(settings: MqttSettings, session: Session) -> Client:
    """A paho client for ``session``: MQTT 5 or 3.1.1, credentials and TLS from the
    URL, the Will. Connects nothing (``reconnect()`` does, see :class:`LoopBridge`)."""
    v5 = settings.protocol == "5"
    client = _Client(
        CallbackAPIVersion.VERSION2,
        client_id=session.client_id,
        protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
        clean_session=None if v5 else not session.persistent,
        manual_ack=session.manual_ack,
        reconnect_on_failure=False,  # MqttConnection reconnects, with its backoff
    )
    client.connect_timeout = session.connect_timeout_s
    client.max_inflight_messages_set(session.max_inflight)
    url = settings.url
    if url.username:
        client.username_pw_set(url.username, url.password)
    if url.tls:
        client.tls_set_context(settings.tls_context())
    if session.will is not None:
        w = session.will
        client.will_set(w.topic, w.payload, qos=w.qos, retain=w.retain)
    if v5 and session.persistent:
        # paho 2.2's Properties.__init__(self, packetType) has no annotations
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = session.session_expiry_s
        client.connect_async(
            url.host, url.port, session.keepalive_s, clean_start=False, properties=props
        )
    else:
        client.connect_async(url.host, url.port, keepalive=session.keepalive_s)
    return client
