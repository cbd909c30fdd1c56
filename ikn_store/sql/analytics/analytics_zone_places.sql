-- Each zone under every place it counts for: itself, its floor, its building, and the
-- agency that owns it ('' for shared zones).
CREATE OR REPLACE VIEW analytics_zone_places AS
SELECT z.id AS zone_id, 'zone' AS level, z.id AS place FROM zones z
UNION ALL SELECT z.id, 'floor', z.floor_id FROM zones z
UNION ALL SELECT z.id, 'building', f.building_id FROM zones z JOIN floors f ON f.id = z.floor_id
UNION ALL SELECT z.id, 'agency', coalesce(z.agency, '') FROM zones z;
