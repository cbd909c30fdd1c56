-- The rule "a person at a building's door checks in that day's booking there": the
-- person's booked bookings of a desk in the building whose day (the building's zone) is
-- that of `at`, when `at` and `received` (when the server heard of it) are before the
-- booking's end. A badge tap (attendance_badge_taps) and a scan of the kiosk's door code
-- (ikn_store.attendance.signals.check_in_at_door) both check in by it.
CREATE OR REPLACE FUNCTION attendance_door_bookings(
    person text, building text, at timestamptz, received timestamptz
) RETURNS TABLE (booking_id uuid) LANGUAGE sql STABLE AS $$
    SELECT b.id
    FROM buildings bd
    JOIN floors f ON f.building_id = bd.id
    JOIN zones z ON z.floor_id = f.id
    JOIN desks d ON d.zone_id = z.id
    JOIN bookings b ON b.desk_id = d.id
    WHERE bd.id = building AND b.person_id = person AND b.status = 'booked'
      AND b.period && tstzrange(at - interval '1 day', at + interval '1 day')
      AND at < upper(b.period) AND received < upper(b.period)
      AND (at AT TIME ZONE bd.tz)::date = (lower(b.period) AT TIME ZONE bd.tz)::date
$$;
