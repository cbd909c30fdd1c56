-- Attendance that no device can forge or backdate (issue 16).
--
-- 1. Badge taps count only from a badge reader at a door: a device of kind
--    badge_reader placed in a building (every device is) and at no desk. The ingest
--    dead-letters a tap from any other device first (wrong_kind: not a badge reader;
--    not_at_door: a reader placed at a desk); ingest_derive() below takes taps only from
--    such readers too, so no other path makes one a signal or a check-in.
-- 2. A tap is stored with the time it was received (attendance_signals.received_at), and
--    checks in a booking only when it was received before the booking ended: a tap
--    replayed or backdated after the day cannot check in that day's booking; nor can a
--    desk sensor's reading (the newest receipt of its summary entry, "seen"). A device's
--    signal received more than the policy's corrections.late_signal_hours after its time
--    is "late": evidence that counts only once a correction request citing it
--    (attendance_requests.evidence) is approved, which sets accepted_by
--    (ikn_store/attendance_days.py).
-- 3. The dirty-day job audits every record it changes: attendance_audit.signals holds
--    the ids of the signals that were new to the record.

ALTER TABLE attendance_requests ADD COLUMN evidence bigint[] NOT NULL DEFAULT '{}';
ALTER TABLE attendance_signals
    ADD COLUMN accepted_by uuid REFERENCES attendance_requests ON DELETE SET NULL;
ALTER TABLE attendance_audit ADD COLUMN signals text[] NOT NULL DEFAULT '{}';

-- ingest_derive() of migration 0017 with the badge taps and the sensor check-in of
-- points 1 and 2; its other statements are unchanged.
CREATE OR REPLACE FUNCTION ingest_derive(
    summary json, vacant_grace interval, check_in_opens interval,
    has_counts boolean, has_taps boolean
) RETURNS void
-- One plan per connection: the arrays' sizes do not change the plans worth having.
SET plan_cache_mode = force_generic_plan
LANGUAGE plpgsql AS $$
DECLARE
    captured record;
    occupied_from timestamptz;
    occupied_to timestamptz;
    bookings_near boolean := false;
BEGIN
    WITH summary AS MATERIALIZED (
        SELECT * FROM json_to_recordset(ingest_derive.summary)
            AS u(device_id text, kind text, ts timestamptz, seen timestamptz,
                 occupied boolean, last_occupied boolean)
    ), dirty AS (
        -- What ingest_mark_dirty() (migration 0014) marks, from the summary.
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
    SELECT min(ts) FILTER (WHERE occupied), max(ts) FILTER (WHERE occupied)
    INTO occupied_from, occupied_to
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
              FROM json_to_recordset(ingest_derive.summary)
                  AS s(device_id text, kind text, ts timestamptz, seen timestamptz,
                       occupied boolean)
              JOIN devices d ON d.id = s.device_id AND d.desk_id IS NOT NULL
              JOIN bookings bk ON bk.desk_id = d.desk_id AND bk.status = 'booked'
                   AND s.ts >= lower(bk.period) - check_in_opens AND s.ts < upper(bk.period)
                   AND s.seen < upper(bk.period)  -- received while the booking lasts
              WHERE s.kind = 'desk_occupancy' AND s.occupied
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
            -- Only from a badge reader at a door: of kind badge_reader, at no desk (the
            -- ingest dead-letters the others as wrong_kind or not_at_door first).
            SELECT s.device_id, s.stream, s.seq, s.ts, s.received_at, s.body->>'badge' AS token,
                   coalesce(s.body->>'direction', 'in') AS direction, d.building_id
            FROM staging_readings s JOIN devices d ON d.id = s.device_id
                 AND d.kind = 'badge_reader' AND d.desk_id IS NULL
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
            INSERT INTO attendance_signals
                (person_id, kind, at, place_type, building_id, source, received_at)
            SELECT person_id, CASE WHEN direction = 'out' THEN 'badge_out' ELSE 'badge_in' END,
                   ts, 'office', building_id, 'reading:' || device_id || '/' || stream || '/' || seq,
                   received_at
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
                       AND k.ts < upper(b.period) AND k.received_at < upper(b.period)
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
            FROM json_to_recordset(ingest_derive.summary)
                AS s(device_id text, kind text, ts timestamptz, occupied boolean)
            JOIN devices d ON d.id = s.device_id AND d.desk_id IS NOT NULL
            JOIN bookings b ON b.desk_id = d.desk_id AND b.status IN ('booked', 'checked_in')
                 AND s.ts >= lower(b.period) AND s.ts < upper(b.period)
            JOIN zones z ON z.id = d.zone_id
            JOIN floors f ON f.id = z.floor_id
            WHERE s.kind = 'desk_occupancy' AND s.occupied
            ORDER BY b.id, s.ts
            ON CONFLICT ON CONSTRAINT attendance_signals_once DO NOTHING
            RETURNING 1
        )
        SELECT (SELECT count(*) FROM badge_signals) AS badge,
               (SELECT count(*) FROM badge_check_in) AS checked_in,
               (SELECT count(*) FROM occupied) AS occupied
        INTO captured;
    END IF;
END
$$;
