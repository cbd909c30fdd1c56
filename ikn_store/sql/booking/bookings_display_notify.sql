-- Desk displays (ingest/display.py): a booking cancelled, checked in or out, released,
-- moved or deleted notifies its desk on 'ikn_booking_changes' at commit, when the
-- booking matters to what the display shows now (it has not ended and starts within a
-- day). New bookings: bookings_display_notify_inserted.
CREATE OR REPLACE FUNCTION bookings_display_notify() RETURNS trigger LANGUAGE plpgsql AS $$
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

CREATE OR REPLACE TRIGGER bookings_display_notify
AFTER DELETE OR UPDATE OF status, period, desk_id, ended_at, checked_in_at
ON bookings FOR EACH ROW EXECUTE FUNCTION bookings_display_notify();
