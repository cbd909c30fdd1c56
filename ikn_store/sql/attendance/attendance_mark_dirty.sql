-- Every new signal marks its person's local day dirty (one statement per insert): the
-- day in their duty station's zone, else their home building's, else WITA.
CREATE OR REPLACE FUNCTION attendance_mark_dirty() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO attendance_dirty (person_id, day)
    SELECT DISTINCT n.person_id, (n.at AT TIME ZONE coalesce(p.duty_station_tz, b.tz, 'Asia/Makassar'))::date
    FROM new_signals n
    JOIN people p ON p.id = n.person_id
    LEFT JOIN buildings b ON b.id = p.home_building_id
    ON CONFLICT (person_id, day) DO UPDATE SET marked_at = now();
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER attendance_signals_dirty AFTER INSERT ON attendance_signals
    REFERENCING NEW TABLE AS new_signals FOR EACH STATEMENT
    EXECUTE FUNCTION attendance_mark_dirty();
