-- One utilisation row (docs/analytics.md) as compact JSON text, from the sums of a place
-- and bucket (secs: the bucket's seconds inside the period). The one definition of the
-- figures: the queries of ikn_store/analytics.py and analytics_desk_row use it. Place
-- ids are [A-Za-z0-9_-] and buckets dates or times, so to_json quotes them; a float8
-- prints as the shortest text that reads back exactly, a valid JSON number.
CREATE OR REPLACE FUNCTION analytics_utilisation_row(
    place text, bucket text, desks bigint, secs float8, slots_live bigint, slots_used bigint,
    occ_sum float8, peak bigint, live_s float8, occupied_s float8, booked_s float8,
    occupied_booked_s float8
) RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT '{"place":' || coalesce(to_json(place)::text, 'null')
        || ',"bucket":' || to_json(bucket)::text
        || ',"desks":' || desks
        || ',"live_minutes":' || round(live_s / 0.6) / 100
        || ',"occupied_minutes":' || round(occupied_s / 0.6) / 100
        || ',"booked_minutes":' || round(booked_s / 0.6) / 100
        || ',"unbooked_occupied_minutes":' || round((occupied_s - occupied_booked_s) / 0.6) / 100
        || ',"occupancy_share":'
        || coalesce((round(occupied_s / nullif(live_s, 0) * 10000) / 10000)::text, 'null')
        || ',"booked_share":'
        || coalesce((round(booked_s / nullif(desks * secs, 0) * 10000) / 10000)::text, 'null')
        || ',"peak_occupied":' || peak
        || ',"average_occupied":' || round(occupied_s / secs * 10000) / 10000
        || ',"frequency":' || coalesce(
               (round(slots_used / nullif(slots_live, 0)::float8 * 10000) / 10000)::text, 'null')
        || ',"occupancy_rate":' || coalesce(
               (round(occ_sum / nullif(slots_used, 0) * 10000) / 10000)::text, 'null')
        || ',"utilisation":' || coalesce(
               (round(occ_sum / nullif(slots_live, 0) * 10000) / 10000)::text, 'null')
        || '}'
$$;
