-- requires: ingest/ingest_summary
-- Ingest step (ingest_derive): what the analytics rollups recompute
-- (ikn_store/rollups.py) after a batch of readings, per zone (the refresh recomputes
-- whole zone-days anyway): a desk reading from its time to two expected intervals later
-- (its state holds that long), an environment reading at its moment. Redelivered
-- readings mark again, which costs a recomputation but changes no figure.
-- batch: the batch's summary, as ingest_derive parsed it.
CREATE OR REPLACE FUNCTION analytics_mark_readings(batch ingest_summary[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO analytics_dirty (zone_id, span)
    SELECT z.zone_id, tstzrange(min(z.lo), max(z.hi))
    FROM (SELECT CASE WHEN s.kind = 'desk_occupancy' THEN k.zone_id ELSE d.zone_id END AS zone_id,
                 s.lo,
                 s.hi + CASE WHEN s.kind = 'desk_occupancy'
                             THEN make_interval(secs => 2 * d.expected_interval_s)
                             ELSE interval '1 microsecond' END AS hi
          FROM (SELECT device_id, kind, min(ts) AS lo, max(ts) AS hi
                FROM unnest(batch)
                WHERE kind IN ('desk_occupancy', 'environment') GROUP BY device_id, kind) s
          JOIN devices d ON d.id = s.device_id
          LEFT JOIN desks k ON k.id = d.desk_id AND d.kind = 'desk_sensor'
          WHERE s.kind = 'environment' OR k.id IS NOT NULL) z
    WHERE z.zone_id IS NOT NULL
    GROUP BY z.zone_id;
END
$$;
