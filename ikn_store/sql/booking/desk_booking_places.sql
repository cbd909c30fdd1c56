-- Everything the API checks before booking a desk, in one row: the booking rules in
-- force (a zone's values override its building's, a building's its site's, field by
-- field; NULL everywhere: the platform default), who may book a restricted zone, and
-- whether the desk is disabled or assigned to one person. The API keeps these rows in
-- memory (ikn_store/booking_places.py); the booking INSERT re-reads the row's
-- fingerprint and books only when it still matches, so a rule changed meanwhile is
-- never missed.
CREATE OR REPLACE VIEW desk_booking_places AS
SELECT p.*, md5(p::text) AS fingerprint
FROM (
    SELECT d.id AS desk_id, z.id AS zone_id, b.id AS building_id, b.tz,
           coalesce(zr.max_days_ahead, r.max_days_ahead, sr.max_days_ahead) AS max_days_ahead,
           coalesce(zr.min_minutes, r.min_minutes, sr.min_minutes) AS min_minutes,
           coalesce(zr.max_minutes, r.max_minutes, sr.max_minutes) AS max_minutes,
           coalesce(zr.opens_minute, r.opens_minute, sr.opens_minute) AS opens_minute,
           coalesce(zr.closes_minute, r.closes_minute, sr.closes_minute) AS closes_minute,
           coalesce(zr.cancel_cutoff_minutes, r.cancel_cutoff_minutes, sr.cancel_cutoff_minutes)
               AS cancel_cutoff_minutes,
           (SELECT array_agg(a.agency || coalesce('/' || a.unit, '') ORDER BY a.agency, a.unit NULLS FIRST)
            FROM zone_access a WHERE a.zone_id = z.id) AS allowed,
           d.disabled, d.assigned_to
    FROM desks d
    JOIN zones z ON z.id = d.zone_id
    JOIN floors f ON f.id = z.floor_id
    JOIN buildings b ON b.id = f.building_id
    LEFT JOIN site_booking_rules sr ON sr.site_id = b.site_id
    LEFT JOIN booking_rules r ON r.building_id = b.id
    LEFT JOIN zone_booking_rules zr ON zr.zone_id = z.id
) p;
