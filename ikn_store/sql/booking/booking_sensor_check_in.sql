-- requires: ingest/ingest_summary
-- Ingest step (ingest_derive): a desk's sensor showing occupied inside a booked
-- booking's check-in window (booking_check_in_window) checks it in, when the reading
-- was received while the booking lasts (a replayed or backdated reading cannot check
-- in a booking that has ended: "seen" is the newest receipt of its summary entry).
CREATE OR REPLACE FUNCTION booking_sensor_check_in(
    batch ingest_summary[], check_in_opens interval
)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    UPDATE bookings b
    SET status = 'checked_in', checked_in_at = hit.ts, check_in_signal = 'sensor'
    FROM (SELECT bk.id, min(s.ts) AS ts
          FROM unnest(batch) AS s
          JOIN devices d ON d.id = s.device_id AND d.desk_id IS NOT NULL
          JOIN bookings bk ON bk.desk_id = d.desk_id AND bk.status = 'booked'
               AND s.ts <@ booking_check_in_window(bk.period, check_in_opens)
               AND s.seen < upper(bk.period)  -- received while the booking lasts
          WHERE s.kind = 'desk_occupancy' AND s.occupied
          GROUP BY bk.id) hit
    WHERE b.id = hit.id AND b.status = 'booked';
END
$$;
