-- New bookings mark analytics dirty once per statement (a batch's INSERT holds many
-- rows), from its transition table; updates and deletes: analytics_bookings_dirty.
CREATE OR REPLACE FUNCTION analytics_bookings_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO analytics_dirty (desk_id, span) SELECT desk_id, period FROM new_bookings;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER analytics_bookings_inserted
AFTER INSERT ON bookings REFERENCING NEW TABLE AS new_bookings
FOR EACH STATEMENT EXECUTE FUNCTION analytics_bookings_inserted();
