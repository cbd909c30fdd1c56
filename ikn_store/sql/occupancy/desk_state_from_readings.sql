-- requires: ingest/ingest_summary
-- Ingest step (ingest_derive): each desk's live state from the newest (ts, then seq)
-- desk reading of its sensor in the batch; a newer stored report wins, and a vacant
-- desk keeps counting as in use for the grace (desk_debounce; EXCLUDED holds the raw
-- reading). desk_state_changed turns each change into a desk event.
CREATE OR REPLACE FUNCTION desk_state_from_readings(
    batch ingest_summary[], vacant_grace interval
)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO desk_state AS s (desk_id, device_id, occupied, since, reported_at, updated_at)
    SELECT d.desk_id, l.device_id, l.last_occupied, l.ts, l.ts, now()
    FROM (SELECT DISTINCT ON (device_id) device_id, ts, last_occupied
          FROM unnest(batch)
          WHERE kind = 'desk_occupancy' ORDER BY device_id, ts DESC) l
    JOIN devices d ON d.id = l.device_id AND d.desk_id IS NOT NULL
    ON CONFLICT (desk_id) DO UPDATE SET
        device_id = EXCLUDED.device_id,
        (occupied, since, vacant_since) = (
            SELECT * FROM desk_debounce(s.occupied, s.since, s.vacant_since,
                                        EXCLUDED.occupied, EXCLUDED.since, now() - vacant_grace)),
        reported_at = EXCLUDED.reported_at,
        updated_at = now()
    WHERE EXCLUDED.reported_at >= s.reported_at;
END
$$;
