-- requires: ingest/ingest_summary
-- Ingest step (ingest_derive): each device's last contact, the newest receipt of its
-- readings in the batch (device health, the fleet view's "offline" alert).
CREATE OR REPLACE FUNCTION device_last_seen(batch ingest_summary[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO device_status AS s (device_id, last_seen)
    SELECT device_id, max(seen)
    FROM unnest(batch)
    GROUP BY device_id
    ON CONFLICT (device_id) DO UPDATE SET last_seen = GREATEST(s.last_seen, EXCLUDED.last_seen);
END
$$;
