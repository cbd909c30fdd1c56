-- requires: analytics/analytics_utilisation_row
-- Each desk's utilisation row for one local day bucket (analytics_desk_rows), rendered
-- from its analytics_days row whenever the refresh rewrites that row: a month of a
-- campus's desks by day is then a read of ready rows (no per-row work at query time).
CREATE OR REPLACE FUNCTION analytics_desk_row(a analytics_days) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT analytics_utilisation_row(
        a.place, to_char(a.day, 'YYYY-MM-DD'), 1, 86400, a.slots_live, a.slots_used,
        a.occ_sum, a.peak, a.live_s, a.occupied_s, a.booked_s, a.occupied_booked_s)
$$;
