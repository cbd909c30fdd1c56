"""The ingest loop: collect a batch, decode, write in one transaction, then acknowledge."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Protocol

import asyncpg

from ikn_core.periodic import every
from ikn_core.settings import IngestSettings
from ikn_service.disruptions import Recorder, ingest_lag
from ikn_store.errors import CONNECTION_LOST
from ikn_store.fleet.dead_letters import DeadLetter, safe_text
from ikn_store.fleet.devices import alert_counts
from ikn_store.migrations import migrate
from ikn_store.pool import close_pool, create_pool
from ikn_store.readings.partitions import ensure_partitions
from ikn_store.readings.rows import (
    StatusUpdate,
    UpMessage,
    WriteResult,
    release_vacant_desks,
    write,
)
from ingest.decode import Cleared, Decoded, Received, Window, decode
from ingest.display import DisplayFeed
from ingest.influx import InfluxClient, InfluxSink
from ingest.metrics import IngestMetrics, serve_metrics
from ingest.mqtt import Inbox, MqttSource
from ingest.stored import StoredNotices

log = logging.getLogger(__name__)


class Acknowledger(Protocol):
    """What the consumer needs of its MQTT source (``MqttSource``): acknowledge a
    message once its batch committed, and stop taking messages when writing failed."""

    def ack(self, message: Received) -> None: ...

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> None: ...

    def stop(self) -> None: ...


PARTITIONS_AHEAD_DAYS = 7
MAINTENANCE_INTERVAL_S = 3600
REPORT_INTERVAL_S = 10
RELEASE_INTERVAL_S = 1.0  # how late a desk left turns free after its grace, at most
ALERTS_INTERVAL_S = 60.0  # how often the ikn_device_alerts gauge is recomputed
RETRY_MAX_DELAY_S = 30.0
STOP_GRACE_S = 5.0  # how long a stop waits for the database before cutting it
# SQLSTATE classes that say "try again later", not "this batch is bad".
_TRANSIENT_CLASSES = ("08", "53", "57", "40")


class Stats:
    """Running totals: logged every few seconds, and exported as Prometheus metrics."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.metrics = IngestMetrics()

    def add(self, result: WriteResult, batch: Sequence[Decoded], commit_s: float) -> None:
        m = self.metrics
        self.counts["messages"] += len(batch)
        self.counts["stored"] += result.stored
        self.counts["duplicates"] += result.duplicates
        m.messages.inc(len(batch))
        m.stored.inc(result.stored)
        m.duplicates.inc(result.duplicates)
        m.batch_messages.observe(len(batch))
        m.commit_seconds.observe(commit_s)
        m.last_commit.set(time.time())
        for letter in result.dead_letters:
            self.counts[f"dead_letter.{letter.reason}"] += 1
            m.dead_letters.labels(letter.reason).inc()
        committed = datetime.now(UTC)
        observe = m.lag_seconds.observe
        for item in batch:
            if type(item) is UpMessage and item.rows:
                rows = item.rows
                newest = rows[0].ts if len(rows) == 1 else max(r.ts for r in rows)
                observe(max(0.0, (committed - newest).total_seconds()))
            elif type(item) is Cleared:
                self.counts["cleared"] += 1


class DeadLetterLog:
    """Dead letters in the log without flooding it: the first of a device and reason in
    an interval is logged at once, the others as one line per device and reason when the
    interval ends (``flush``). 5,000 bad messages from one device make two lines."""

    def __init__(self) -> None:
        self._counts: Counter[tuple[str, str]] = Counter()

    def add(self, letter: DeadLetter) -> None:
        key = (letter.device_id or "(none)", letter.reason)
        if key not in self._counts:
            log.warning(
                "dead letter from %s: %s: %s",
                safe_text(letter.topic, 300),
                letter.reason,
                safe_text(letter.detail, 500),
            )
        self._counts[key] += 1

    def flush(self, interval_s: float) -> None:
        for (device, reason), n in sorted(self._counts.items()):
            if n > 1:
                log.warning(
                    "%d more dead letters from device %s: %s in the last %.0f s",
                    n - 1,
                    device,
                    reason,
                    interval_s,
                )
        self._counts.clear()


class WriteTimedOut(Exception):
    """A batch's write took longer than ``IKN_INGEST_WRITE_TIMEOUT_S``."""

    def __init__(self, seconds: int) -> None:
        super().__init__(f"a batch's write took over {seconds} s; its connection was cut")


def _is_transient(exc: BaseException) -> bool:
    """Worth retrying on another connection later, rather than blaming the batch
    (``TimeoutError``: no connection came within the pool's acquire timeout)."""
    if isinstance(exc, (*CONNECTION_LOST, WriteTimedOut, TimeoutError)):
        return True
    state = getattr(exc, "sqlstate", None) or ""
    return isinstance(exc, asyncpg.PostgresError) and state[:2] in _TRANSIENT_CLASSES


@dataclass(slots=True)
class _InFlight:
    """A batch being written: acknowledged when ``task`` gives its result."""

    batch: list[Received]
    decoded: list[Decoded]
    task: asyncio.Task[WriteResult | None]
    started: float


class IngestService:
    def __init__(self, settings: IngestSettings) -> None:
        self.settings = settings
        self.window = Window(timedelta(days=settings.retention_days))
        self.stats = Stats()
        self._days: set[date] = set()
        self.source: MqttSource | None = None
        self.sink: InfluxSink | None = None
        self.vacant_grace = timedelta(seconds=settings.desk_vacant_grace_s)
        self.dead_letter_log = DeadLetterLog()
        # Outage grace: the heartbeat, and the windows of lag noticed meanwhile
        self.disruptions = Recorder("ingest", settings.disruption)

    @property
    def subscribed(self) -> bool:
        """Whether the broker has confirmed the subscriptions of the current connection."""
        source = self.source
        return source is not None and 0 < source.subscribed_generation == source.generation

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set; what is in flight then is left unacknowledged,
        and the broker redelivers it to the next ingest."""
        s = self.settings
        pool = await create_pool(s.db.url, s.db.pool_max)
        try:
            async with pool.acquire() as conn:
                await migrate(conn)
            await self._maintain_once(pool)
            queue = Inbox(s.queue_max_messages, s.queue_max_bytes)
            source = self.source = MqttSource(s.mqtt, s.client_id, s.share_group, queue)
            feed = DisplayFeed(s.db.url, pool, source.publish)
            cutter = asyncio.create_task(_cut_database_after_grace(stop, pool, feed))
            try:
                async with (
                    serve_metrics(self.stats.metrics, s.metrics_host, s.metrics_port),
                    self._influx_sink() as sink,
                    asyncio.TaskGroup() as tg,
                ):
                    tg.create_task(source.run(stop))
                    if sink is not None:
                        tg.create_task(sink.run(stop))
                    tg.create_task(self._consume(queue, pool, source, stop))
                    for interval_s, what, job in (
                        (MAINTENANCE_INTERVAL_S, "maintenance", partial(self._maintain_once, pool)),
                        (REPORT_INTERVAL_S, "report", self._report),
                        (0.05, "subscription watch", self._watch_subscription),
                        (RELEASE_INTERVAL_S, "desk release", partial(self._release_desks, pool)),
                        (ALERTS_INTERVAL_S, "alert count", partial(self._count_alerts, pool)),
                    ):
                        tg.create_task(
                            every(interval_s, job, what=what, stop=stop, first_after=True)
                        )
                    tg.create_task(feed.run(stop))
                    tg.create_task(
                        every(
                            s.disruption.heartbeat_s,
                            partial(self._heartbeat, pool),
                            what="disruption heartbeat",
                            stop=stop,
                        )
                    )
            finally:
                cutter.cancel()
                source.stop()
        finally:
            await close_pool(pool)
        log.info("ingest stopped: %s", dict(self.stats.counts))

    async def _consume(
        self,
        queue: asyncio.Queue[Received],
        pool: asyncpg.Pool,
        source: Acknowledger,
        stop: asyncio.Event,
    ) -> None:
        """Batch, decode and write; up to ``writers`` batches are written at once (the
        next one is decoded while the database works on the last). Batches are
        acknowledged in the order they were received, each once its transaction
        committed: MQTT wants PUBACKs in order, and a crash loses nothing unacknowledged."""
        writers = asyncio.Semaphore(self.settings.writers)
        written: asyncio.Queue[_InFlight | None] = asyncio.Queue()
        notices = self._stored_notices(source)
        acker = asyncio.create_task(self._acknowledge(written, source, queue, notices))
        try:
            while not stop.is_set() and not acker.done():
                batch = await self._collect(queue, stop)
                if not batch:
                    continue
                decoded = [decode(m, self.window) for m in batch]
                await writers.acquire()
                task = asyncio.create_task(self._write(pool, decoded, stop))
                task.add_done_callback(lambda _t: writers.release())
                written.put_nowait(_InFlight(batch, decoded, task, time.perf_counter()))
        finally:
            written.put_nowait(None)
            await acker  # what is in flight finishes (or gives up, unacknowledged)
            if notices is not None:
                notices.close()

    def _stored_notices(self, source: Acknowledger) -> StoredNotices | None:
        """The end-to-end acknowledgement, unless ``IKN_INGEST_STORED_NOTICES=off``."""
        if not self.settings.stored_notices:
            return None
        interval_s = self.settings.stored_interval_ms / 1000
        return StoredNotices(source.publish, interval_s, self.stats.metrics.stored_notices.inc)

    async def _acknowledge(
        self,
        written: asyncio.Queue[_InFlight | None],
        source: Acknowledger,
        queue: asyncio.Queue[Received],
        notices: StoredNotices | None = None,
    ) -> None:
        while (item := await written.get()) is not None:
            result = await item.task
            if result is None:
                # stopping while the database is away: leave this and the rest unacknowledged
                while (rest := await written.get()) is not None:
                    await rest.task
                return
            for message in item.batch:
                source.ack(message)
            if notices is not None:  # the end-to-end acknowledgement (ingest/stored.py)
                notices.note(item.decoded)
            if self.sink is not None:
                self.sink.offer(item.decoded, result.places)
            self.stats.add(result, item.decoded, time.perf_counter() - item.started)
            self._note_lag(item.decoded, result)
            self.stats.metrics.queue_depth.set(queue.qsize())
            for letter in result.dead_letters:
                self.dead_letter_log.add(letter)

    async def _collect(self, queue: asyncio.Queue[Received], stop: asyncio.Event) -> list[Received]:
        """Wait for a first message, then take more until the batch is full (in messages,
        or in payload bytes as the inbox is: ``IKN_INGEST_QUEUE_MAX_BYTES``) or the
        latency bound is reached."""
        first = await _get_or_stop(queue, stop)
        if first is None:
            return []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.batch_latency_ms / 1000
        batch = [first]
        size, max_size = len(first.payload), self.settings.queue_max_bytes
        while len(batch) < self.settings.batch_max_readings and size < max_size:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                batch.append(queue.get_nowait())
            except asyncio.QueueEmpty:
                try:
                    batch.append(await asyncio.wait_for(queue.get(), remaining))
                except TimeoutError:
                    break
            size += len(batch[-1].payload)
        return batch

    async def _write(
        self, pool: asyncpg.Pool, decoded: Sequence[Decoded], stop: asyncio.Event
    ) -> WriteResult | None:
        delay = 0.5
        while True:
            try:
                try:
                    return await self._write_once(pool, decoded)
                except Exception as exc:
                    if _is_transient(exc):
                        raise
                    return await self._write_apart(pool, decoded, exc)
            except Exception as exc:
                if not _is_transient(exc):
                    raise
                if stop.is_set():
                    log.info("stopping: a batch stays unacknowledged (%s)", exc)
                    return None
                self.stats.metrics.db_retries.inc()
                log.warning(
                    "PostgreSQL unavailable (%s: %s); holding acks, retry in %.1f s",
                    type(exc).__name__,
                    exc,
                    delay,
                )
            try:
                await asyncio.wait_for(stop.wait(), delay)
                return None
            except TimeoutError:
                delay = min(delay * 2, RETRY_MAX_DELAY_S)

    async def _write_once(self, pool: asyncpg.Pool, decoded: Sequence[Decoded]) -> WriteResult:
        ups = [d for d in decoded if isinstance(d, UpMessage)]
        statuses = [d for d in decoded if isinstance(d, StatusUpdate)]
        dead = [d for d in decoded if isinstance(d, DeadLetter)]
        seconds = self.settings.write_timeout_s
        # The last resort: a wait that neither the cut nor the release's deadline ends
        # (asyncpg shields its release and a query's cancel; under load a writer was
        # seen waiting on one of them for ever) ends the attempt here, as a timeout: the
        # batch is retried, and what it had written is found again as duplicates.
        async with asyncio.timeout(3 * seconds):
            conn = await pool.acquire(timeout=seconds)
            try:
                async with _cut_after(conn, seconds):
                    await self._ensure_days(conn, ups)
                    return await write(
                        conn,
                        ups,
                        statuses,
                        dead,
                        vacant_grace=self.vacant_grace,
                        dead_letter_keep=self.settings.dead_letter_keep_per_hour,
                    )
            finally:
                await release_within(pool, conn, seconds)

    async def _write_apart(
        self, pool: asyncpg.Pool, decoded: Sequence[Decoded], exc: Exception
    ) -> WriteResult:
        """A batch the database refused for its content: write each half of it, and
        halve again what is refused, down to the message that is, which is kept as a
        dead letter. One bad message among n costs about 2·log2(n) more transactions
        (one by one cost n: 5,000 messages took 10.3-10.6 s, bisected 0.17-0.36 s)."""
        if len(decoded) > 1:
            log.warning(
                "batch refused (%s); isolating what is refused among its %d messages",
                safe_text(str(exc), 300),
                len(decoded),
            )
        total = WriteResult()
        await self._bisect(pool, decoded, exc, total)
        return total

    async def _bisect(
        self, pool: asyncpg.Pool, decoded: Sequence[Decoded], exc: Exception, total: WriteResult
    ) -> None:
        """Write ``decoded``, which the database refused with ``exc``, into ``total``."""
        if len(decoded) == 1:
            _add(total, await self._write_once(pool, [_store_failed(decoded[0], exc)]))
            return
        middle = len(decoded) // 2
        for half in (decoded[:middle], decoded[middle:]):
            try:
                result = await self._write_once(pool, half)
            except Exception as half_exc:
                if _is_transient(half_exc):
                    raise
                await self._bisect(pool, half, half_exc, total)
            else:
                _add(total, result)

    @asynccontextmanager
    async def _influx_sink(self) -> AsyncIterator[InfluxSink | None]:
        """The InfluxDB sink while the block runs, when ``IKN_INFLUX_URL`` is set."""
        influx = self.settings.influx
        if influx is None:
            yield None
            return
        async with InfluxClient(influx) as client:
            self.sink = InfluxSink(influx, self.stats.metrics, client)
            log.info(
                "also writing readings to InfluxDB at %s, bucket %s", influx.url, influx.bucket
            )
            try:
                yield self.sink
            finally:
                self.sink = None

    async def _ensure_days(self, conn: asyncpg.Connection, ups: Sequence[UpMessage]) -> None:
        days = {r.ts.date() for m in ups for r in m.rows} - self._days
        if days:
            await ensure_partitions(conn, days)
            self._days |= days

    async def _maintain_once(self, pool: asyncpg.Pool) -> None:
        today = datetime.now(UTC).date()
        days = {today + timedelta(days=n) for n in range(-1, PARTITIONS_AHEAD_DAYS + 1)}
        async with pool.acquire() as conn:  # old ones: the API's retention job drops
            await ensure_partitions(conn, days)
        self._days = {d for d in self._days | days if d >= today - timedelta(days=2)}

    async def _heartbeat(self, pool: asyncpg.Pool) -> None:
        await self.disruptions.round(pool, datetime.now(UTC))

    def _note_lag(self, decoded: Sequence[Decoded], result: WriteResult) -> None:
        """Note an ``ingest_lag`` window per building whose freshest message of the batch
        (by its receipt here) was stored later than ``IKN_DISRUPTION_INGEST_LAG_S``: the
        ingest's own backlog (a device's clock or outbox replay does not count)."""
        freshest: dict[str, datetime] = {}
        for item in decoded:
            if type(item) is UpMessage and (place := result.places.get(item.device_id)):
                seen = freshest.get(place.building_id)
                if seen is None or item.received_at > seen:
                    freshest[place.building_id] = item.received_at
        if freshest:
            ingest_lag(self.disruptions, datetime.now(UTC), freshest)

    async def _count_alerts(self, pool: asyncpg.Pool) -> None:
        async with pool.acquire() as conn:
            counts = await alert_counts(conn, datetime.now(UTC))
        for alert, n in counts.items():
            self.stats.metrics.device_alerts.labels(alert).set(n)

    async def _release_desks(self, pool: asyncpg.Pool) -> None:
        async with pool.acquire() as conn:
            await release_vacant_desks(conn, self.vacant_grace)

    async def _watch_subscription(self) -> None:
        self.stats.metrics.subscribed.set(1 if self.subscribed else 0)

    async def _report(self) -> None:
        self.dead_letter_log.flush(REPORT_INTERVAL_S)
        if self.stats.counts:
            log.info("ingest totals: %s", dict(sorted(self.stats.counts.items())))


@asynccontextmanager
async def _cut_after(conn: asyncpg.Connection, seconds: int) -> AsyncIterator[None]:
    """Cut ``conn`` if the block takes over ``seconds``; the block then fails with
    ``WriteTimedOut``. A connection wedged mid-reply (asyncpg#784 after a server
    restart, or a network gone silent) would hold its caller for ever: cancelling
    the query is not enough, as asyncpg then waits on the same connection to roll
    back. Cut, every wait on it ends at once, and the server rolls back."""
    cut = False

    def terminate() -> None:
        nonlocal cut
        cut = True
        with suppress(asyncpg.InterfaceError):  # already closed by asyncpg
            conn.terminate()

    timer = asyncio.get_running_loop().call_later(seconds, terminate)
    try:
        yield
    except Exception as exc:
        if cut:
            raise WriteTimedOut(seconds) from exc
        raise
    finally:
        timer.cancel()


async def release_within(pool: asyncpg.Pool, conn: asyncpg.Connection, seconds: float) -> None:
    """Give ``conn`` back to ``pool``. The release resets the connection, which is a
    query too: on a connection gone silent just after its batch committed, asyncpg's
    default would wait for it for ever (``async with pool.acquire()`` gives no
    deadline), holding that writer. Past ``seconds`` asyncpg terminates the connection
    and the pool opens another; what was written stands."""
    try:
        await pool.release(conn, timeout=seconds)
    except (TimeoutError, *CONNECTION_LOST) as exc:
        log.warning(
            "a database connection did not answer its reset after a write (%s); closed it",
            type(exc).__name__,
        )


def _add(total: WriteResult, result: WriteResult) -> None:
    total.stored += result.stored
    total.duplicates += result.duplicates
    total.dead_letters += result.dead_letters
    total.places.update(result.places)


def _store_failed(item: Decoded, exc: Exception) -> DeadLetter:
    """A message the database refused, as a dead letter (``store_failed``: the contract
    let through what PostgreSQL cannot hold). The dead-letter write renders every text
    safely (ikn_store.fleet.dead_letters), so one failing again is no matter of content."""
    if isinstance(item, Cleared) or (
        isinstance(item, DeadLetter) and item.reason == "store_failed"
    ):
        raise exc
    return DeadLetter(
        item.received_at,
        item.topic,
        item.device_id,
        "store_failed",
        f"PostgreSQL refused it: {exc}",
        item.payload,
    )


async def _get_or_stop(queue: asyncio.Queue[Received], stop: asyncio.Event) -> Received | None:
    getter = asyncio.ensure_future(queue.get())
    stopper = asyncio.ensure_future(stop.wait())
    done, _ = await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    if getter in done:
        return getter.result()
    getter.cancel()
    return None


async def _cut_database_after_grace(
    stop: asyncio.Event, pool: asyncpg.Pool, feed: DisplayFeed
) -> None:
    """Once ``stop`` is set, give the batches being written (and every other query)
    ``STOP_GRACE_S``; then cut every database connection, so that nothing waits on a
    database that stopped answering. Writes cut short are not acknowledged: the broker
    redelivers them, and whatever of them committed is dropped then as a duplicate."""
    await stop.wait()
    await asyncio.sleep(STOP_GRACE_S)
    log.warning(
        "still stopping %.0f s after the signal; cutting the database connections "
        "(what was being written stays unacknowledged and is redelivered)",
        STOP_GRACE_S,
    )
    pool.terminate()
    feed.terminate()
