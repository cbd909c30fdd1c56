-- Analytics speed: a month of per-desk figures answered from rows rendered at refresh.
-- Readings are marked dirty by the ingest (analytics_mark_readings) instead of by the
-- trigger an older database still has; booking changes notify the desk displays
-- (bookings_display_notify).
DROP TRIGGER IF EXISTS analytics_readings_dirty ON readings;
DROP FUNCTION IF EXISTS analytics_readings_dirty();

-- Each desk's utilisation row for one local day bucket, rendered from its
-- analytics_days row (analytics_desk_row) whenever the refresh rewrites that row: a
-- month of a campus's desks by day is then a read of ready rows.
CREATE TABLE analytics_desk_rows (
    desk_id text NOT NULL,
    day     date NOT NULL,
    body    text NOT NULL,  -- JSON, as analytics_utilisation_row renders it
    PRIMARY KEY (desk_id, day)
);

-- The desk days rolled up before: marked dirty, so that the next refresh renders them.
INSERT INTO analytics_dirty (desk_id, span)
SELECT a.place, tstzrange(a.day::timestamp AT TIME ZONE b.tz, (a.day + 1)::timestamp AT TIME ZONE b.tz)
FROM analytics_days a
JOIN desks d ON d.id = a.place
JOIN zones z ON z.id = d.zone_id
JOIN floors f ON f.id = z.floor_id
JOIN buildings b ON b.id = f.building_id
WHERE a.level = 'desk';
