-- requires: ingest/ingest_summary
-- Ingest step (ingest_derive): a desk sensor showing occupied during an active booking
-- of its desk is an attendance signal of the booking's person (one desk_occupied per
-- booking, at the earliest such reading).
CREATE OR REPLACE FUNCTION attendance_desk_occupied(batch ingest_summary[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO attendance_signals (person_id, kind, at, place_type, building_id, source)
    SELECT DISTINCT ON (b.id) b.person_id, 'desk_occupied', s.ts, 'office', f.building_id,
           'booking:' || b.id
    FROM unnest(batch) AS s
    JOIN devices d ON d.id = s.device_id AND d.desk_id IS NOT NULL
    JOIN bookings b ON b.desk_id = d.desk_id AND booking_active(b.status)
         AND s.ts >= lower(b.period) AND s.ts < upper(b.period)
    JOIN zones z ON z.id = d.zone_id
    JOIN floors f ON f.id = z.floor_id
    WHERE s.kind = 'desk_occupancy' AND s.occupied
    ORDER BY b.id, s.ts
    ON CONFLICT ON CONSTRAINT attendance_signals_once DO NOTHING;
END
$$;
