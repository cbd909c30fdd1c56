-- Ingest step (ingest_derive): the batch's badge taps (in staging_readings), only from a
-- badge reader at a door: of kind badge_reader, at no desk (the ingest dead-letters the
-- others as wrong_kind or not_at_door first). A known token's tap becomes an attendance
-- signal, stored with the time it was received, and checks in that day's booked booking
-- in the reader's building when received before the booking ended (the rule of
-- attendance_door_bookings); unknown tokens are counted per reader and local day, as
-- received (a redelivered tap counts again).
CREATE OR REPLACE FUNCTION attendance_badge_taps() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    WITH taps AS (
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
    )
    UPDATE bookings bk
    SET status = 'checked_in', checked_in_at = hit.ts, check_in_signal = 'badge'
    FROM (SELECT b.booking_id AS id, min(k.ts) AS ts
          FROM known k
          CROSS JOIN LATERAL attendance_door_bookings(k.person_id, k.building_id, k.ts,
                                                      k.received_at) b
          WHERE k.direction = 'in'
          GROUP BY b.booking_id) hit
    WHERE bk.id = hit.id AND bk.status = 'booked';
END
$$;
