-- Booking rules per site (a campus of buildings, table sites from 0009): a building's
-- own values override its site's, field by field, and a zone's override both. NULL
-- keeps the value from the level above (the platform defaults at the top).

CREATE TABLE site_booking_rules (
    site_id               text PRIMARY KEY REFERENCES sites ON DELETE CASCADE,
    max_days_ahead        integer CHECK (max_days_ahead BETWEEN 0 AND 366),
    min_minutes           integer CHECK (min_minutes BETWEEN 1 AND 1440),
    max_minutes           integer CHECK (max_minutes BETWEEN 1 AND 10080),
    opens_minute          integer CHECK (opens_minute BETWEEN 0 AND 1439),
    closes_minute         integer CHECK (closes_minute BETWEEN 1 AND 1440),
    cancel_cutoff_minutes integer CHECK (cancel_cutoff_minutes BETWEEN 0 AND 10080),
    CHECK ((opens_minute IS NULL) = (closes_minute IS NULL)),
    CHECK (opens_minute IS NULL OR opens_minute < closes_minute),
    CHECK ((min_minutes IS NULL) = (max_minutes IS NULL)),
    CHECK (min_minutes IS NULL OR min_minutes <= max_minutes)
);

DROP VIEW desk_booking_places;
CREATE VIEW desk_booking_places AS
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
