-- Analytics speed: a month of per-desk figures answered from rows rendered at refresh,
-- dirty-marking by the ingest instead of a trigger, and booking changes notified to the
-- desk displays.

-- One utilisation row (docs/analytics.md) as compact JSON text, from the sums of a place
-- and bucket (secs: the bucket's seconds inside the period). The one definition of the
-- figures: the queries of ikn_store/analytics.py and the desk rows below use it. Place
-- ids are [A-Za-z0-9_-] and buckets dates or times, so to_json quotes them; a float8
-- prints as the shortest text that reads back exactly, a valid JSON number.
CREATE FUNCTION analytics_utilisation_row(
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

-- Each desk's utilisation row for one local day bucket, rendered from its
-- analytics_days row whenever the refresh rewrites that row: a month of a campus's
-- desks by day is then a read of ready rows (no per-row work at query time).
CREATE TABLE analytics_desk_rows (
    desk_id text NOT NULL,
    day     date NOT NULL,
    body    text NOT NULL,  -- JSON, as analytics_utilisation_row renders it
    PRIMARY KEY (desk_id, day)
);

CREATE FUNCTION analytics_desk_row(a analytics_days) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT analytics_utilisation_row(
        a.place, to_char(a.day, 'YYYY-MM-DD'), 1, 86400, a.slots_live, a.slots_used,
        a.occ_sum, a.peak, a.live_s, a.occupied_s, a.booked_s, a.occupied_booked_s)
$$;

INSERT INTO analytics_desk_rows
SELECT a.place, a.day, analytics_desk_row(a) FROM analytics_days a WHERE a.level = 'desk';

-- Dirty-marking of readings moves into the ingest's write transaction
-- (ikn_store/readings.py marks from its staging table): the statement-level trigger
-- with its transition table cost about a third of the readings INSERT.
DROP TRIGGER analytics_readings_dirty ON readings;
DROP FUNCTION analytics_readings_dirty();

-- Desk displays (ingest/display.py): a booking created, cancelled, checked in or out or
-- released notifies its desk on 'ikn_booking_changes' at commit, when the booking
-- matters to what the display shows now (it has not ended and starts within a day).
CREATE FUNCTION bookings_display_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND upper(OLD.period) > now()
       AND lower(OLD.period) < now() + interval '1 day' THEN
        PERFORM pg_notify('ikn_booking_changes', OLD.desk_id);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND upper(NEW.period) > now()
       AND lower(NEW.period) < now() + interval '1 day' THEN
        PERFORM pg_notify('ikn_booking_changes', NEW.desk_id);  -- one per desk and commit
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER bookings_display_notify
AFTER INSERT OR DELETE OR UPDATE OF status, period, desk_id, ended_at, checked_in_at
ON bookings FOR EACH ROW EXECUTE FUNCTION bookings_display_notify();
