"""``ikn bench ui-latency``: from a sensor's MQTT publish to the desk's new state in the
live floor map's DOM, in headless Chromium, with the demo building running.

It starts the whole demo (``ikn.demo.Demo``: embedded PostgreSQL, Mosquitto with its
accounts, the ingest, the API and pages, the simulated building at ``--speed``; its
output goes to stderr and its logs to a temporary directory), signs the demo's
facility manager in (a page session of their own) and opens ``/console/floor`` on the
floor of ``f1-manual``, the desk whose sensor nobody simulates. In that page it adds a
``MutationObserver`` on the desk's ``data-state`` and, beside the page's own stream, a
bare ``EventSource`` on the same stream URL that only stamps each event of that desk:
the ceiling, the same event's arrival in the same page without the page's work.

First one reading, again every 2 s until the page shows it (the ingest may not be
subscribed yet when the API answers). Then N times, one after the other: publish the
desk's reading (occupied, then vacant, ...) as the desk itself (QoS 1, its own login),
wait until both the DOM and the bare EventSource show its new state, and take

- ``dom_ms``: the page's stamp of the mutation minus the publish time;
- ``bare_ms``: the page's stamp of the bare EventSource's event minus the publish time;
- ``own_ms``: the same for the page's own EventSource (console.js's, stamped by a
  listener an init script adds before console.js adds its own), so that ``dom_ms -
  own_ms`` is the page's work alone. The bare stream is a second stream from the
  server (its own subscriber, its own read of the desk), so its event may come before
  or after the page's own: the ceiling is a stream with no page behind it, not the
  page's stream itself.

Clocks: the page stamps both on one clock (``performance.timeOrigin +
performance.now()``, milliseconds since the epoch), so ``dom - bare`` needs no
alignment; the publish time is Python's ``time.time_ns()``, put on the page's clock by
the offset measured before and after the changes (the page's clock read through
``page.evaluate`` between two Python stamps, the round trip with the smallest span of
20 kept; ``clock_error_ms`` is half that span, the bound on the alignment's error,
``clock_drift_ms`` how much the offset moved during the run). The ingest runs with
``IKN_DESK_VACANT_GRACE_S=0``, so that a vacant reading frees the desk at once (the
sensor's raw state, as the tests run it).

Prints one JSON line: changes, p50_ms, p99_ms (DOM), ceiling_p50_ms, ceiling_p99_ms
(bare EventSource), ratio (ceiling p50 / DOM p50; at least 0.8 is the target),
ratio_p99, own_stream_p50_ms, page_work_p50_ms/p99 (DOM minus own arrival, per change),
the clock figures, the load average and what ran.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from ikn.benchmarks.booking import _percentile
from ikn.brokers import free_port
from ikn.demo import MANUAL_DESK, MANUAL_DEVICE, Demo, DemoOptions
from ikn_core.contract import Batch, DeskOccupancy, encode_batch, up_topic
from ikn_store import web_sessions

CHROMIUM = "/usr/bin/chromium"
MANAGER = "demo-fajar"  # the demo's facility manager
CLOCK_SAMPLES = 20
WAIT_MS = 10_000  # for one change to reach the page; past it the run fails
WARM_UP_TRIES = 30  # a first reading, every 2 s until the page shows it
STATES = {True: "unbooked_use", False: "free"}  # the manual desk has no booking

# Before the page's scripts: the first EventSource made (console.js's own) stamps each
# event of the desk as it arrives, before console.js's listener handles it.
_OWN_STREAM = """(() => {
  const Native = window.EventSource;
  const mark = '"desk":"%s"';
  window.__own = [];
  window.EventSource = class extends Native {
    constructor(url, init) {
      super(url, init);
      if (window.__ownMade) return;
      window.__ownMade = true;
      this.addEventListener("message", (message) => {
        const t = performance.timeOrigin + performance.now();
        if (!message.data.includes(mark)) return;
        const event = JSON.parse(message.data);
        if (!event.refresh) window.__own.push([event.state, t]);
      });
    }
  };
})();"""

# In the page: the observer and the bare EventSource, each stamping the desk's new
# state when it differs from the one it last stamped (a reconnection's refresh repeats
# states: not a change); ``until(n, ms)`` resolves once both have n stamps (true) or
# after ms (false), ``opened`` once the bare EventSource had its refresh. Functions,
# never strings to evaluate: the page's Content-Security-Policy forbids eval.
_INSTRUMENT = """([desk, stream]) => {
  const now = () => performance.timeOrigin + performance.now();
  const waiters = new Set();
  const bench = (window.__bench = { dom: [], bare: [] });
  const check = () => {
    for (const w of waiters) {
      if (bench.dom.length >= w.n && bench.bare.length >= w.n) w.done(true);
    }
  };
  bench.until = (n, ms) => new Promise((resolve) => {
    const w = { n, done: (ok) => { waiters.delete(w); resolve(ok); } };
    waiters.add(w);
    setTimeout(() => w.done(false), ms);
    check();
  });
  const node = document.querySelector(`svg.live-plan [data-desk="${desk}"]`);
  let domLast = node.dataset.state;
  new MutationObserver(() => {
    const t = now();
    if (node.dataset.state !== domLast) {
      domLast = node.dataset.state;
      bench.dom.push([domLast, t]);
      check();
    }
  }).observe(node, { attributes: true, attributeFilter: ["data-state"] });
  let bareLast = domLast;
  let opened;
  bench.opened = new Promise((resolve) => { opened = resolve; });
  const source = new EventSource(stream);
  source.addEventListener("message", (message) => {
    const t = now();
    const event = JSON.parse(message.data);
    if (event.desk !== desk) return;
    if (event.refresh) { opened(true); return; }
    if (event.state !== bareLast) {
      bareLast = event.state;
      bench.bare.push([bareLast, t]);
      check();
    }
  });
  return domLast;
}"""


@dataclass(frozen=True, slots=True)
class Options:
    changes: int = 200
    speed: float = 60.0  # the simulated building's, as the demo's


async def _session(url: str) -> tuple[str, str]:
    """A page session of the demo's facility manager (the cookie's value), and the
    manual desk's floor."""
    session = secrets.token_urlsafe(32)
    conn = await asyncpg.connect(url)
    try:
        await web_sessions.create(
            conn,
            session,
            secrets.token_urlsafe(32),
            MANAGER,
            now=datetime.now(UTC),
            lasts=timedelta(hours=2),
        )
        floor = await conn.fetchval(
            "SELECT z.floor_id FROM desks d JOIN zones z ON z.id = d.zone_id WHERE d.id = $1",
            MANUAL_DESK,
        )
    finally:
        await conn.close()
    return session, str(floor)


def _publisher(demo: Demo) -> mqtt.Client:
    """The manual desk's own MQTT connection (its login when the broker has accounts)."""
    assert demo.broker is not None
    protocol = mqtt.MQTTv5 if demo.broker.protocol == "5" else mqtt.MQTTv311
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=MANUAL_DEVICE, protocol=protocol)
    password = demo.logins.get(MANUAL_DEVICE)
    if password:
        client.username_pw_set(MANUAL_DEVICE, password)
    client.connect(demo.broker.host, demo.broker.port)
    client.loop_start()
    return client


async def _clock_offset(page: Any) -> tuple[float, float]:
    """The page's clock minus Python's (ms) and half the round trip it was read in."""
    best: tuple[float, float] | None = None
    for _ in range(CLOCK_SAMPLES):
        before = time.time_ns()
        seen = await page.evaluate("performance.timeOrigin + performance.now()")
        after = time.time_ns()
        span = (after - before) / 1e6
        offset = float(seen) - (before + after) / 2e6
        if best is None or span < 2 * best[1]:
            best = (offset, span / 2)
    assert best is not None
    return best


class _Desk:
    """The manual desk's readings, published as the desk, and what the page stamped."""

    def __init__(self, page: Any, client: mqtt.Client, occupied: bool) -> None:
        self.page, self.client, self.occupied = page, client, occupied
        self.stream = Batch.new_stream()
        self.seq = 0

    def publish(self) -> None:
        self.seq += 1
        reading = DeskOccupancy(self.seq, int(time.time() * 1000), self.occupied)
        payload = encode_batch(Batch(self.stream, (reading,)))
        self.client.publish(up_topic(MANUAL_DEVICE), payload, qos=1)

    async def shown(self, n: int, within_ms: float) -> bool:
        """Whether both the DOM and the bare EventSource stamp ``n`` changes in time."""
        found = await self.page.evaluate("([n, ms]) => window.__bench.until(n, ms)", [n, within_ms])
        return bool(found)

    async def warm_up(self) -> None:
        """A first change, again until it shows: the ingest may not listen yet."""
        for _ in range(WARM_UP_TRIES):
            self.publish()
            if await self.shown(1, 2000):
                self.occupied = not self.occupied
                return
        raise RuntimeError("the manual desk's first reading never reached the page")

    async def change(self, n: int, offset: float) -> tuple[float, float, float]:
        """The ``n``-th change (counting the warm-up's): ms after its publish until the
        DOM showed it, the bare EventSource received it, the page's own one did."""
        sent = time.time_ns() / 1e6 + offset  # on the page's clock
        self.publish()
        if not await self.shown(n, WAIT_MS):
            raise RuntimeError(f"change {n - 1} did not reach the page in {WAIT_MS} ms")
        (dom_state, dom_at), (bare_state, bare_at), own_at = await self.page.evaluate(
            """n => {
              const own = window.__own.filter(([state]) => state === window.__bench.dom[n - 1][0]);
              return [window.__bench.dom[n - 1], window.__bench.bare[n - 1], own.at(-1)[1]];
            }""",
            n,
        )
        want = STATES[self.occupied]
        if dom_state != want or bare_state != want:
            raise RuntimeError(
                f"change {n - 1}: expected {want}, the page shows {dom_state}"
                f" and the stream sent {bare_state}"
            )
        self.occupied = not self.occupied
        return dom_at - sent, bare_at - sent, own_at - sent


async def _open_map(browser: Any, base: str, session: str, floor: str) -> tuple[Any, str]:
    """The floor map signed in, instrumented; the page and the desk's state on it."""
    context = await browser.new_context()
    await context.add_cookies(
        [{"name": "ikn_session", "value": session, "domain": "127.0.0.1", "path": "/"}]
    )
    page = await context.new_page()
    await page.add_init_script(_OWN_STREAM % MANUAL_DESK)
    await page.goto(f"{base}/console/floor?floor={floor}")
    await page.wait_for_selector("svg.live-plan[data-live]", state="attached")
    url = await page.get_attribute("#live-status", "data-stream")
    first = await page.evaluate(_INSTRUMENT, [MANUAL_DESK, url])
    await page.evaluate("() => window.__bench.opened")
    return page, str(first)


async def _measure(demo: Demo, port: int, o: Options) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    session, floor = await _session(demo.db_url)
    client = _publisher(demo)
    dom_ms: list[float] = []
    bare_ms: list[float] = []
    own_ms: list[float] = []
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM)
            try:
                page, first = await _open_map(browser, f"http://127.0.0.1:{port}", session, floor)
                desk = _Desk(page, client, occupied=first != STATES[True])
                await desk.warm_up()
                offset, error = await _clock_offset(page)
                for n in range(2, o.changes + 2):
                    dom, bare, own = await desk.change(n, offset)
                    dom_ms.append(dom)
                    bare_ms.append(bare)
                    own_ms.append(own)
                offset_after, error_after = await _clock_offset(page)
            finally:
                await browser.close()
    finally:
        client.disconnect()
        client.loop_stop()
    work_ms = [d - own for d, own in zip(dom_ms, own_ms, strict=True)]
    p50, ceiling_p50 = _percentile(dom_ms, 0.5), _percentile(bare_ms, 0.5)
    p99, ceiling_p99 = _percentile(dom_ms, 0.99), _percentile(bare_ms, 0.99)
    return {
        "changes": o.changes,
        "p50_ms": round(p50, 1),
        "p99_ms": round(p99, 1),
        "max_ms": round(max(dom_ms), 1),
        "ceiling_p50_ms": round(ceiling_p50, 1),
        "ceiling_p99_ms": round(ceiling_p99, 1),
        "ratio": round(ceiling_p50 / p50, 3) if p50 > 0 else None,
        "ratio_p99": round(ceiling_p99 / p99, 3) if p99 > 0 else None,
        "own_stream_p50_ms": round(_percentile(own_ms, 0.5), 1),
        "page_work_p50_ms": round(_percentile(work_ms, 0.5), 2),
        "page_work_p99_ms": round(_percentile(work_ms, 0.99), 2),
        "clock_offset_ms": round(offset, 2),
        "clock_error_ms": round(max(error, error_after), 2),
        "clock_drift_ms": round(offset_after - offset, 2),
        "speed": o.speed,
        "load_1m": round(os.getloadavg()[0], 1),
        "cpus": os.cpu_count(),
    }


def run(o: Options) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ikn-bench-ui-") as tmp:
        options = DemoOptions(
            directory=tmp,
            api_port=free_port(),
            speed=o.speed,
            env=(("IKN_DESK_VACANT_GRACE_S", "0"), ("IKN_LOG_LEVEL", "WARNING")),
        )
        demo = Demo(options)
        with contextlib.redirect_stdout(sys.stderr):  # the JSON line alone on stdout
            try:
                port = demo.start()
                return asyncio.run(_measure(demo, port, o))
            finally:
                demo.stop()
