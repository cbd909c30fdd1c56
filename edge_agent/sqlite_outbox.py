"""A durable outbox: readings kept in an SQLite file (WAL) until the broker's PUBACK.

It implements :class:`edge_agent.outbox.Outbox`. One file holds one stream:

- ``meta``: the stream UUID, the next ``seq`` and the number of readings ever
  dropped. A restarted agent continues the same stream where it stopped; a new
  (or lost) file starts a new random stream, as the contract requires.
- ``readings``: one row per reading not yet acknowledged, ``seq`` as the row id
  and the kind-specific fields as compact JSON (``outbox_bytes_per_reading`` in
  ``ikn bench edge`` measures the cost).

A row is written (and committed) before the reading can be published, and deleted
only when the PUBACK of the message that carried it arrives (``ack``), or, with
``AgentConfig.await_stored``, when the platform's ``stored`` notice confirms it. Readings
handed out by ``take`` and not yet acknowledged are *in flight* in memory only: after
a crash every row is pending again and is published again with the same
``(stream, seq)``, which the platform drops as a duplicate.

Durability (fsync policy). The journal is WAL, ``synchronous=FULL`` by default:
each commit appends to the WAL and fsyncs it (one sequential write; the database
file itself is only written at checkpoints). That survives SIGKILL *and* power
loss. ``synchronous=NORMAL`` skips that fsync: a commit then survives the process
being killed (the WAL is in the operating system's cache) but not a power cut,
which can take back the last commits, and with them the persisted ``next_seq``:
the agent would number new readings with ``seq``\\ s it already published, and
the platform would drop them as duplicates. So NORMAL is offered only for
storage where power loss is not a concern (tmpfs, benchmarks), never as the
default. One fsync per reading is cheap at a device's rate (a few per second);
``extend`` commits a burst in one transaction.

Bounded: at ``capacity`` readings the oldest pending reading is dropped in the
same transaction as the new one is written, counted in ``dropped`` (persisted,
so the status reports every reading the file ever lost) and logged.

Use it from one thread (the agent's loop thread); each call is one short
transaction. ``exclusive=True`` (a fleet of thousands in one process) holds the
file's lock for as long as it is open: no other process can read it meanwhile,
and no ``-shm`` file is made, so an outbox holds two file descriptors, not three.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import orjson

from edge_agent.outbox import FIRST_SEQ, OutboxCounters, checked_capacity
from ikn_core.contract import Batch, Observation, Reading, make_reading

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS readings (seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL,
                                     kind TEXT NOT NULL, body BLOB NOT NULL);
"""
DROP_LOG_EVERY = 1000  # one WARNING per this many dropped readings


class SqliteOutbox(OutboxCounters):
    """A bounded, durable outbox in one SQLite file; see the module docstring."""

    def __init__(
        self,
        path: str | Path,
        capacity: int = 1_000_000,
        *,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
        exclusive: bool = False,
    ) -> None:
        checked_capacity(capacity)  # before the file is opened
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError("synchronous must be FULL or NORMAL")
        self.path = Path(path)
        self._db = sqlite3.connect(self.path, isolation_level=None)
        if exclusive:  # before WAL is entered: then the WAL index lives in the heap
            self._db.execute("PRAGMA locking_mode=EXCLUSIVE")
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={synchronous}")
        self._db.executescript(SCHEMA)
        super().__init__(capacity, *self._load_meta())
        self._dropped_at_open = self._dropped
        (count,) = self._db.execute("SELECT count(*) FROM readings").fetchone()
        self._count = int(count)
        self._pending = self._count  # after a restart nothing is in flight
        self._cursor = FIRST_SEQ - 1  # readings below it were handed out (are in flight)
        log.info(
            "outbox %s: stream %s, %d readings waiting, next seq %d",
            self.path,
            self._stream,
            self._count,
            self._next_seq,
        )

    def _load_meta(self) -> tuple[str, int, int]:
        meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        if "stream" not in meta:
            meta = {"stream": Batch.new_stream(), "next_seq": str(FIRST_SEQ), "dropped": "0"}
            with self._transaction():
                self._db.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
        (highest,) = self._db.execute("SELECT max(seq) FROM readings").fetchone()
        next_seq = max(int(meta["next_seq"]), (highest or 0) + 1)
        return meta["stream"], next_seq, int(meta["dropped"])

    def close(self) -> None:
        """Checkpoint and close the file; the outbox cannot be used afterwards."""
        self._db.close()

    # -- the Outbox protocol (stream, next_seq, dropped: OutboxCounters) ----------------

    @property
    def pending(self) -> int:
        return self._pending

    def __len__(self) -> int:
        return self._count

    def append(self, reading: Reading) -> None:
        self.extend((reading,))

    def extend(self, readings: Iterable[Reading]) -> None:
        """Append several readings (``seq`` counting up from ``next_seq``) in one commit."""
        batch = list(readings)
        for offset, reading in enumerate(batch):
            if reading.seq != self._next_seq + offset:
                raise ValueError(f"expected seq {self._next_seq + offset}, got {reading.seq}")
        if not batch:
            return
        next_seq = batch[-1].seq + 1
        surplus = max(0, len(batch) - self.capacity)  # a burst larger than the whole outbox
        batch = batch[surplus:]
        # A generator: each encoded body is freed once bound (orjson's small results
        # each hold a page of the heap while alive).
        rows = ((r.seq, r.ts, r.kind, orjson.dumps(r.body())) for r in batch)
        overflow = max(0, self._count + len(batch) - self.capacity)
        with self._transaction():
            dropped = self._drop_oldest(overflow) if overflow else 0
            self._db.executemany("INSERT INTO readings VALUES (?, ?, ?, ?)", rows)
            if dropped or surplus:
                self._save_meta(next_seq, self._dropped + dropped + surplus)
        self._next_seq = next_seq
        self._count += len(batch) - dropped
        self._pending += len(batch)
        if dropped or surplus:
            self._note_dropped(dropped + surplus)

    def take(self, limit: int) -> list[Reading]:
        rows = self._db.execute(
            "SELECT seq, ts, kind, body FROM readings WHERE seq >= ? ORDER BY seq LIMIT ?",
            (self._cursor, limit),
        ).fetchall()
        if rows:
            self._cursor = rows[-1][0] + 1
            self._pending -= len(rows)
        return _readings(rows)

    def ack(self, first_seq: int, last_seq: int) -> int:
        with self._transaction():
            gone = self._db.execute(
                "DELETE FROM readings WHERE seq BETWEEN ? AND ? RETURNING seq",
                (first_seq, last_seq),
            ).fetchall()
            if gone:  # the newest row may be gone: next_seq must survive it
                self._save_meta(self._next_seq, self._dropped)
        self._count -= len(gone)
        if last_seq >= self._cursor:  # a stored notice may confirm readings still pending
            self._pending -= sum(1 for (seq,) in gone if seq >= self._cursor)
        return len(gone)

    def held(self, first_seq: int, last_seq: int) -> list[Reading]:
        rows = self._db.execute(
            "SELECT seq, ts, kind, body FROM readings WHERE seq BETWEEN ? AND ? AND seq < ?"
            " ORDER BY seq",
            (first_seq, last_seq, self._cursor),
        ).fetchall()
        return _readings(rows)

    # -- inside ---------------------------------------------------------------------------

    def _drop_oldest(self, n: int) -> int:
        """Delete the ``n`` oldest readings, pending ones first (an in-flight one is
        already with the MQTT client); return how many rows went."""
        from_pending = min(n, self._pending)
        dropped = 0
        if from_pending:
            victims = self._db.execute(
                "DELETE FROM readings WHERE seq IN"
                " (SELECT seq FROM readings WHERE seq >= ? ORDER BY seq LIMIT ?) RETURNING seq",
                (self._cursor, from_pending),
            ).fetchall()
            dropped = len(victims)
            self._pending -= dropped
            self._cursor = max(seq for (seq,) in victims) + 1
        if n > from_pending:  # every held reading is in flight: the oldest of them go
            dropped += self._db.execute(
                "DELETE FROM readings WHERE seq IN (SELECT seq FROM readings ORDER BY seq LIMIT ?)",
                (n - from_pending,),
            ).rowcount
        return int(dropped)

    def _save_meta(self, next_seq: int, dropped: int) -> None:
        self._db.executemany(
            "UPDATE meta SET value = ? WHERE key = ?",
            ((str(next_seq), "next_seq"), (str(dropped), "dropped")),
        )

    def _note_dropped(self, n: int) -> None:
        before = self._dropped
        self._dropped += n
        if (
            before == self._dropped_at_open
            or before // DROP_LOG_EVERY != self._dropped // DROP_LOG_EVERY
        ):
            log.warning(
                "outbox %s full (%d readings): dropped the oldest; %d dropped in all",
                self.path,
                self.capacity,
                self._dropped,
            )

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


def _readings(rows: Iterable[tuple[int, int, str, bytes]]) -> list[Reading]:
    return [
        make_reading(Observation(kind, ts, orjson.loads(body)), seq) for seq, ts, kind, body in rows
    ]


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on an exception)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")
