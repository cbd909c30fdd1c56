-- The ingest's write in one call: the batch is in the connection's staging_readings
-- (COPY), and ingest_staged() stores it in readings and derives, from the same rows,
-- everything that depends on them. One round trip instead of up to seven, and PL/pgSQL keeps
-- each statement's plan for the session. The statements are those the ingest used to
-- send one by one (ikn_store/readings.py), in the same order: each sees what the
-- previous one changed (a sensor check-in before attendance capture, for instance).
--
-- staging_readings is a temporary table (ikn_store/pool.py creates it on every pooled
-- connection), so these functions work only on such a connection.

-- What the analytics rollups recompute (ikn_store/rollups.py), per zone (the refresh
-- recomputes whole zone-days anyway): a desk reading from its time to two expected
-- intervals later (its state holds that long), an environment reading at its moment.
-- Redelivered readings mark again, which costs a recomputation but changes no figure.
CREATE FUNCTION ingest_mark_dirty() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO analytics_dirty (zone_id, span)
    SELECT z.zone_id, tstzrange(min(z.lo), max(z.hi))
    FROM (SELECT CASE WHEN s.kind = 'desk_occupancy' THEN k.zone_id ELSE d.zone_id END AS zone_id,
                 s.lo,
                 s.hi + CASE WHEN s.kind = 'desk_occupancy'
                             THEN make_interval(secs => 2 * d.expected_interval_s)
                             ELSE interval '1 microsecond' END AS hi
          FROM (SELECT device_id, kind, min(ts) AS lo, max(ts) AS hi FROM staging_readings
                WHERE kind IN ('desk_occupancy', 'environment') GROUP BY device_id, kind) s
          JOIN devices d ON d.id = s.device_id
          LEFT JOIN desks k ON k.id = d.desk_id AND d.kind = 'desk_sensor'
          WHERE s.kind = 'environment' OR k.id IS NOT NULL) z
    WHERE z.zone_id IS NOT NULL
    GROUP BY z.zone_id;
END
$$;

-- Stores the staged batch and derives live state from it; returns how many readings
-- were new (the rest were already stored: redeliveries).
--
-- One hash-grouped pass summarises the batch per device, kind and time (readings taken
-- at one moment share a row), and dirty spans, desk state and last-seen are written
-- from that summary in one statement: they write different tables, which the later
-- statements do not read. Scanning the batch once per statement (and sorting it for
-- desk state) took 18 of 40 ms on a 5,000-reading batch (auto_explain); this takes 6.
-- The summary also says whether the batch holds badge taps and the span of its
-- "occupied" desk readings: the sensor check-in and the attendance statement, which can
-- only find something for a tap or for an occupied reading inside (or, for a check-in,
-- just before) an active booking, are skipped when there is none.
-- vacant_grace: a desk reported vacant still counts as in use this long.
-- check_in_opens: how long before a booking starts a sensor may check it in.
-- has_counts: the batch holds people counts (zone counts are derived only then).
CREATE FUNCTION ingest_staged(
    vacant_grace interval, check_in_opens interval, has_counts boolean
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    stored bigint;
    captured record;
    has_taps boolean;
    occupied_from timestamptz;
    occupied_to timestamptz;
    bookings_near boolean := false;
BEGIN
    -- Most batches hold no reading stored before, and a plain INSERT costs PostgreSQL
    -- a quarter to a half less than one with ON CONFLICT (no speculative insertion). A
    -- redelivery makes it fail with unique_violation, which undoes it (the block is a
    -- subtransaction); then the batch goes in again skipping what is already stored.
    BEGIN
        INSERT INTO readings SELECT * FROM staging_readings;
        GET DIAGNOSTICS stored = ROW_COUNT;
    EXCEPTION WHEN unique_violation THEN
        INSERT INTO readings SELECT * FROM staging_readings ON CONFLICT DO NOTHING;
        GET DIAGNOSTICS stored = ROW_COUNT;
    END;

    -- Per device, kind and time (a message's readings usually share their time, so a
    -- few rows per device): the newest receipt, whether a reading says "occupied", and
    -- whether the one with the highest seq does. Hash-grouped: no sort of the batch.
    WITH summary AS MATERIALIZED (
        SELECT device_id, kind, ts, max(received_at) AS seen, bool_or(occupied) AS occupied,
               coalesce(max(seq) FILTER (WHERE occupied) = max(seq), false) AS last_occupied
        FROM (SELECT device_id, kind, ts, seq, received_at,
                     CASE WHEN kind = 'desk_occupancy' THEN (body->>'occupied')::boolean END
                         AS occupied
              FROM staging_readings) r
        GROUP BY device_id, kind, ts
    ), dirty AS (
        -- What ingest_mark_dirty() above marks, from the summary.
        INSERT INTO analytics_dirty (zone_id, span)
        SELECT z.zone_id, tstzrange(min(z.lo), max(z.hi))
        FROM (SELECT CASE WHEN s.kind = 'desk_occupancy' THEN k.zone_id ELSE d.zone_id END AS zone_id,
                     s.lo,
                     s.hi + CASE WHEN s.kind = 'desk_occupancy'
                                 THEN make_interval(secs => 2 * d.expected_interval_s)
                                 ELSE interval '1 microsecond' END AS hi
              FROM (SELECT device_id, kind, min(ts) AS lo, max(ts) AS hi FROM summary
                    WHERE kind IN ('desk_occupancy', 'environment') GROUP BY device_id, kind) s
              JOIN devices d ON d.id = s.device_id
              LEFT JOIN desks k ON k.id = d.desk_id AND d.kind = 'desk_sensor'
              WHERE s.kind = 'environment' OR k.id IS NOT NULL) z
        WHERE z.zone_id IS NOT NULL
        GROUP BY z.zone_id
        RETURNING 1
    ), desk AS (
        -- Newest reading wins; a vacant desk keeps counting as in use for the grace,
        -- see desk_debounce() in migration 0010 (EXCLUDED holds the raw reading).
        INSERT INTO desk_state AS s (desk_id, device_id, occupied, since, reported_at, updated_at)
        -- The newest (ts, then seq) reading of each device, as DISTINCT ON over the
        -- whole batch did.
        SELECT d.desk_id, l.device_id, l.last_occupied, l.ts, l.ts, now()
        FROM (SELECT DISTINCT ON (device_id) device_id, ts, last_occupied FROM summary
              WHERE kind = 'desk_occupancy' ORDER BY device_id, ts DESC) l
        JOIN devices d ON d.id = l.device_id AND d.desk_id IS NOT NULL
        ON CONFLICT (desk_id) DO UPDATE SET
            device_id = EXCLUDED.device_id,
            (occupied, since, vacant_since) = (
                SELECT * FROM desk_debounce(s.occupied, s.since, s.vacant_since,
                                            EXCLUDED.occupied, EXCLUDED.since, now() - vacant_grace)),
            reported_at = EXCLUDED.reported_at,
            updated_at = now()
        WHERE EXCLUDED.reported_at >= s.reported_at
        RETURNING 1
    ), seen AS (
        INSERT INTO device_status AS s (device_id, last_seen)
        SELECT device_id, max(seen) FROM summary GROUP BY device_id
        ON CONFLICT (device_id) DO UPDATE SET last_seen = GREATEST(s.last_seen, EXCLUDED.last_seen)
        RETURNING 1
    )
    SELECT coalesce(bool_or(kind = 'badge_tap'), false),
           min(ts) FILTER (WHERE occupied), max(ts) FILTER (WHERE occupied)
    INTO has_taps, occupied_from, occupied_to
    FROM summary;

    -- A sensor check-in and a desk_occupied signal need an occupied reading inside (or,
    -- for the check-in, up to check_in_opens before) a booking.
    IF occupied_from IS NOT NULL THEN
        bookings_near := EXISTS (
            SELECT 1 FROM bookings
            WHERE status IN ('booked', 'checked_in')
                  AND period && tstzrange(occupied_from - check_in_opens,
                                          occupied_to + check_in_opens, '[]'));
    END IF;

    IF bookings_near THEN
        -- A desk's sensor showing occupied inside a booking's check-in window checks it in.
        UPDATE bookings b
        SET status = 'checked_in', checked_in_at = hit.ts, check_in_signal = 'sensor'
        FROM (SELECT bk.id, min(s.ts) AS ts
              FROM staging_readings s
              JOIN devices d ON d.id = s.device_id AND d.desk_id IS NOT NULL
              JOIN bookings bk ON bk.desk_id = d.desk_id AND bk.status = 'booked'
                   AND s.ts >= lower(bk.period) - check_in_opens AND s.ts < upper(bk.period)
              WHERE s.kind = 'desk_occupancy' AND (s.body->>'occupied')::boolean
              GROUP BY bk.id) hit
        WHERE b.id = hit.id AND b.status = 'booked';
    END IF;

    IF has_counts THEN
        -- The newest people count of each zone.
        INSERT INTO zone_counts AS z (zone_id, device_id, people, reported_at, updated_at)
        SELECT DISTINCT ON (d.zone_id) d.zone_id, s.device_id, (s.body->>'count')::integer,
               s.ts, now()
        FROM staging_readings s JOIN devices d ON d.id = s.device_id AND d.zone_id IS NOT NULL
        WHERE s.kind = 'people_count'
        ORDER BY d.zone_id, s.ts DESC, s.seq DESC
        ON CONFLICT (zone_id) DO UPDATE SET
            device_id = EXCLUDED.device_id,
            people = EXCLUDED.people,
            reported_at = EXCLUDED.reported_at,
            updated_at = now()
        WHERE EXCLUDED.reported_at >= z.reported_at;
    END IF;

    -- Attendance signals (ikn_store/attendance.py): badge taps (known tokens become
    -- signals and check in that day's booking; unknown ones are counted per reader and
    -- local day, as received: a redelivered tap counts again), and a desk sensor
    -- showing occupied during its booking (one desk_occupied per booking).
    IF has_taps OR bookings_near THEN
        WITH taps AS (
            SELECT s.device_id, s.stream, s.seq, s.ts, s.body->>'badge' AS token,
                   coalesce(s.body->>'direction', 'in') AS direction, d.building_id
            FROM staging_readings s JOIN devices d ON d.id = s.device_id
            WHERE s.kind = 'badge_tap'
        ), known AS (
            SELECT t.*, b.person_id
            FROM taps t JOIN badges b ON b.token = t.token
                 AND (b.revoked_at IS NULL OR t.ts < b.revoked_at)
        ), unknown_counted AS (
            INSERT INTO badge_unknown_taps AS u (device_id, day, taps)
            SELECT t.device_id, (t.ts AT TIME ZONE bd.tz)::date, count(*)
            FROM taps t JOIN buildings bd ON bd.id = t.building_id
            WHERE NOT EXISTS (SELECT 1 FROM known k WHERE k.device_id = t.device_id
                              AND k.stream = t.stream AND k.seq = t.seq)
            GROUP BY 1, 2
            ON CONFLICT (device_id, day) DO UPDATE SET taps = u.taps + EXCLUDED.taps
        ), badge_signals AS (
            INSERT INTO attendance_signals (person_id, kind, at, place_type, building_id, source)
            SELECT person_id, CASE WHEN direction = 'out' THEN 'badge_out' ELSE 'badge_in' END,
                   ts, 'office', building_id, 'reading:' || device_id || '/' || stream || '/' || seq
            FROM known
            ON CONFLICT ON CONSTRAINT attendance_signals_once DO NOTHING
            RETURNING 1
        ), badge_check_in AS (
            UPDATE bookings bk
            SET status = 'checked_in', checked_in_at = hit.ts, check_in_signal = 'badge'
            FROM (SELECT b.id, min(k.ts) AS ts
                  FROM known k
                  JOIN buildings bd ON bd.id = k.building_id
                  JOIN bookings b ON b.person_id = k.person_id AND b.status = 'booked'
                       AND b.period && tstzrange(k.ts - interval '1 day', k.ts + interval '1 day')
                       AND k.ts < upper(b.period)
                       AND (k.ts AT TIME ZONE bd.tz)::date = (lower(b.period) AT TIME ZONE bd.tz)::date
                  JOIN desks d ON d.id = b.desk_id
                  JOIN zones z ON z.id = d.zone_id
                  JOIN floors f ON f.id = z.floor_id AND f.building_id = k.building_id
                  WHERE k.direction = 'in'
                  GROUP BY b.id) hit
            WHERE bk.id = hit.id AND bk.status = 'booked'
            RETURNING 1
        ), occupied AS (
            INSERT INTO attendance_signals (person_id, kind, at, place_type, building_id, source)
            SELECT DISTINCT ON (b.id) b.person_id, 'desk_occupied', s.ts, 'office', f.building_id,
                   'booking:' || b.id
            FROM staging_readings s
            JOIN devices d ON d.id = s.device_id AND d.desk_id IS NOT NULL
            JOIN bookings b ON b.desk_id = d.desk_id AND b.status IN ('booked', 'checked_in')
                 AND s.ts >= lower(b.period) AND s.ts < upper(b.period)
            JOIN zones z ON z.id = d.zone_id
            JOIN floors f ON f.id = z.floor_id
            WHERE s.kind = 'desk_occupancy' AND (s.body->>'occupied')::boolean
            ORDER BY b.id, s.ts
            ON CONFLICT ON CONSTRAINT attendance_signals_once DO NOTHING
            RETURNING 1
        )
        SELECT (SELECT count(*) FROM badge_signals) AS badge,
               (SELECT count(*) FROM badge_check_in) AS checked_in,
               (SELECT count(*) FROM occupied) AS occupied
        INTO captured;
    END IF;

    RETURN stored;
END
$$;
