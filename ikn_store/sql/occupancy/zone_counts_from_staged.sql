-- Ingest step (ingest_derive): the newest people count of each zone, from the batch's
-- people_count readings in the connection's staging_readings (ikn_store/readings.py
-- stages the kinds whose bodies the steps read); a newer stored count wins.
CREATE OR REPLACE FUNCTION zone_counts_from_staged() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO zone_counts AS z (zone_id, device_id, people, reported_at, updated_at)
    SELECT DISTINCT ON (d.zone_id) d.zone_id, s.device_id, (s.body->>'count')::integer,
           s.ts, now()
    FROM staging_readings s JOIN devices d ON d.id = s.device_id AND d.zone_id IS NOT NULL
    WHERE s.kind = 'people_count'
    ORDER BY d.zone_id, s.ts DESC, s.seq DESC
    ON CONFLICT (zone_id) DO UPDATE SET
        device_id = EXCLUDED.device_id,
        people = EXCLUDED.people,
        reported_at = EXCLUDED.reported_at,
        updated_at = now()
    WHERE EXCLUDED.reported_at >= z.reported_at;
END
$$;
