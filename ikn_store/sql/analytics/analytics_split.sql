-- The 15-minute slots that [t0, t1) touches, with the seconds it spends in each.
CREATE OR REPLACE FUNCTION analytics_split(t0 timestamptz, t1 timestamptz)
RETURNS TABLE (slot timestamptz, secs double precision) LANGUAGE sql STABLE AS $$
    SELECT s, extract(epoch FROM least(t1, s + interval '15 minutes') - greatest(t0, s))::float8
    FROM generate_series(date_bin('15 minutes', t0, timestamptz '2000-01-01 00:00Z'),
                         t1 - interval '1 microsecond', interval '15 minutes') AS s
    WHERE t1 > t0
$$;
