-- A desk disabled or assigned permanently to one person (columns from 0009) is part
-- of what a booking checks: desk_booking_places gains both columns, so a row's
-- fingerprint changes when an admin disables, enables or (re)assigns a desk, and the
-- booking INSERT (ikn_store.bookings) books only a desk that is not disabled and is
-- assigned to nobody or to the person booked for.

DROP VIEW desk_booking_places;
CREATE VIEW desk_booking_places AS
SELECT p.*, md5(p::text) AS fingerprint
FROM (
    SELECT d.id AS desk_id, z.id AS zone_id, b.id AS building_id, b.tz,
           coalesce(zr.max_days_ahead, r.max_days_ahead) AS max_days_ahead,
           coalesce(zr.min_minutes, r.min_minutes) AS min_minutes,
           coalesce(zr.max_minutes, r.max_minutes) AS max_minutes,
           coalesce(zr.opens_minute, r.opens_minute) AS opens_minute,
           coalesce(zr.closes_minute, r.closes_minute) AS closes_minute,
           coalesce(zr.cancel_cutoff_minutes, r.cancel_cutoff_minutes) AS cancel_cutoff_minutes,
           (SELECT array_agg(a.agency || coalesce('/' || a.unit, '') ORDER BY a.agency, a.unit NULLS FIRST)
            FROM zone_access a WHERE a.zone_id = z.id) AS allowed,
           d.disabled, d.assigned_to
    FROM desks d
    JOIN zones z ON z.id = d.zone_id
    JOIN floors f ON f.id = z.floor_id
    JOIN buildings b ON b.id = f.building_id
    LEFT JOIN booking_rules r ON r.building_id = b.id
    LEFT JOIN zone_booking_rules zr ON zr.zone_id = z.id
) p;
