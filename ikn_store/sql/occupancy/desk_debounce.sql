-- Desk debounce: a desk whose sensor reports vacant stays "occupied" (in use) for a
-- grace period (IKN_DESK_VACANT_GRACE_S); desk_state.vacant_since is when the sensor
-- first said vacant while the desk still counts as in use.
-- The debounced state after a newer reading (raw, at ts) of a desk that was `was`
-- since was_since (vacant_since was_vacant); cutoff = now() - grace.
CREATE OR REPLACE FUNCTION desk_debounce(
    was boolean, was_since timestamptz, was_vacant timestamptz,
    raw boolean, ts timestamptz, cutoff timestamptz,
    OUT occupied boolean, OUT since timestamptz, OUT vacant_since timestamptz
) LANGUAGE sql IMMUTABLE AS $$
    SELECT o,
           CASE WHEN o = was THEN was_since WHEN o THEN ts ELSE coalesce(p, ts) END,
           CASE WHEN o AND NOT raw THEN p END
    FROM (SELECT CASE WHEN was AND NOT raw THEN coalesce(was_vacant, ts) END AS p) pending,
         LATERAL (SELECT raw OR coalesce(p > cutoff, false) AS o) debounced
$$;
