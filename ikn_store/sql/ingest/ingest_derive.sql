-- requires: ingest/ingest_summary
-- The ingest's derivation of everything that depends on a batch of readings, in one
-- call (one round trip per batch, ikn_store/readings.py), in the same transaction that
-- stored the batch. Each step is a function of its feature, called in this order: each
-- sees what the previous one changed (a sensor check-in before the attendance
-- signals, for instance). PL/pgSQL keeps each statement's plan for the session.
--
-- summary: a JSON array with an object per (device_id, kind, ts) of the batch: "seen"
-- the newest receipt, "occupied" whether a reading there says occupied,
-- "last_occupied" whether the one with the highest seq does. (JSON, not arrays:
-- asyncpg checks array elements one by one in Python, which made the write of a batch
-- of single-reading messages cost the ingest twice its CPU.)
-- vacant_grace: a desk reported vacant still counts as in use this long.
-- check_in_opens: how long before a booking starts a sensor may check it in.
-- has_counts, has_taps: the batch holds people counts, badge taps (in staging_readings,
-- a temporary table of every pooled connection, ikn_store/pool.py).
CREATE OR REPLACE FUNCTION ingest_derive(
    summary json, vacant_grace interval, check_in_opens interval,
    has_counts boolean, has_taps boolean
) RETURNS void
-- One plan per connection (for the steps too): the batch's size does not change the
-- plans worth having.
SET plan_cache_mode = force_generic_plan
LANGUAGE plpgsql AS $$
DECLARE
    -- parsed once: each step reads the typed rows (five parses of a 5,000-entry
    -- summary cost more than the steps' own work)
    batch ingest_summary[] := ARRAY(
        SELECT ROW(u.*)::ingest_summary
        FROM json_to_recordset(ingest_derive.summary)
            AS u(device_id text, kind text, ts timestamptz, seen timestamptz,
                 occupied boolean, last_occupied boolean));
    occupied_from timestamptz;
    occupied_to timestamptz;
    bookings_near boolean := false;
BEGIN
    PERFORM analytics_mark_readings(batch);
    PERFORM desk_state_from_readings(batch, vacant_grace);
    PERFORM device_last_seen(batch);

    -- A sensor check-in and a desk_occupied signal need an occupied reading inside (or,
    -- for the check-in, up to check_in_opens before) an active booking: both steps are
    -- skipped when no booking is that near.
    SELECT min(ts), max(ts) INTO occupied_from, occupied_to
    FROM unnest(batch)
    WHERE occupied;
    IF occupied_from IS NOT NULL THEN
        bookings_near := EXISTS (
            SELECT 1 FROM bookings
            WHERE booking_active(status)
                  AND period && tstzrange(occupied_from - check_in_opens,
                                          occupied_to + check_in_opens, '[]'));
    END IF;

    IF bookings_near THEN
        PERFORM booking_sensor_check_in(batch, check_in_opens);
    END IF;
    IF has_counts THEN
        PERFORM zone_counts_from_staged();
    END IF;
    IF has_taps THEN
        PERFORM attendance_badge_taps();
    END IF;
    IF bookings_near THEN
        PERFORM attendance_desk_occupied(batch);
    END IF;
END
$$;
