-- Derived state of the ingest: desk debounce and zone people counts.

-- Desk debounce: a desk whose sensor reports vacant stays "occupied" (in use) for a
-- grace period (IKN_DESK_VACANT_GRACE_S). vacant_since is when the sensor first said
-- vacant while the desk still counts as in use; NULL otherwise (desk_debounce). The ingest turns such
-- desks free once the grace has passed (in the write transaction when a reading shows
-- it, else by a periodic job), with since = vacant_since, so the desk_events trigger
-- and the live stream see one change "free at the time the desk was left".
ALTER TABLE desk_state ADD COLUMN vacant_since timestamptz;
CREATE INDEX desk_state_vacant ON desk_state (vacant_since) WHERE vacant_since IS NOT NULL;

-- The newest people count of each zone (from people_count readings), for the live view.
CREATE TABLE zone_counts (
    zone_id     text PRIMARY KEY REFERENCES zones ON DELETE CASCADE,
    device_id   text NOT NULL,
    people      integer NOT NULL,
    reported_at timestamptz NOT NULL,  -- the device's clock
    updated_at  timestamptz NOT NULL
);

-- Time-range scans of readings get a BRIN index on ts (a few pages per partition,
-- next to free to maintain: readings arrive roughly in time order) instead of the
-- btree on (kind, ts), which cost every stored reading an index entry. Queries by
-- device use the primary key (device_id, stream, seq, ts).
DROP INDEX IF EXISTS readings_kind_ts;
CREATE INDEX readings_ts_brin ON readings USING brin (ts);
