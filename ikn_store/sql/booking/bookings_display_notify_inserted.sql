-- New bookings notify their desks' displays once per statement (a batch's INSERT holds
-- many rows), from its transition table, under bookings_display_notify's condition.
CREATE OR REPLACE FUNCTION bookings_display_notify_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ikn_booking_changes', d.desk_id)  -- one per desk and commit
    FROM (SELECT DISTINCT desk_id FROM new_bookings
          WHERE upper(period) > now() AND lower(period) < now() + interval '1 day') d;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER bookings_display_notify_inserted
AFTER INSERT ON bookings REFERENCING NEW TABLE AS new_bookings
FOR EACH STATEMENT EXECUTE FUNCTION bookings_display_notify_inserted();
