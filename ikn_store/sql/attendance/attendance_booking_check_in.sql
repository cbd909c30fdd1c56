-- A booking checked in (app, sensor or badge) is a signal of its person; received when
-- the booking says (a check-in queued on an offline phone), else now.
CREATE OR REPLACE FUNCTION attendance_booking_check_in() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO attendance_signals (person_id, kind, at, place_type, building_id, source,
                                    received_at)
    SELECT n.person_id, 'booking_check_in', n.checked_in_at, 'office', f.building_id,
           'booking:' || n.id, coalesce(n.check_in_received_at, now())
    FROM new_bookings n
    JOIN old_bookings o ON o.id = n.id
    JOIN desks d ON d.id = n.desk_id
    JOIN zones z ON z.id = d.zone_id
    JOIN floors f ON f.id = z.floor_id
    WHERE n.checked_in_at IS NOT NULL AND o.checked_in_at IS NULL
    ON CONFLICT ON CONSTRAINT attendance_signals_once DO NOTHING;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER bookings_attendance AFTER UPDATE ON bookings
    REFERENCING OLD TABLE AS old_bookings NEW TABLE AS new_bookings FOR EACH STATEMENT
    EXECUTE FUNCTION attendance_booking_check_in();
