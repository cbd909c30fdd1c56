-- A booking changed or deleted marks its desk's old and new periods dirty for the
-- rollups (ikn_store/rollups.py); new bookings: analytics_bookings_inserted.
CREATE OR REPLACE FUNCTION analytics_bookings_dirty() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO analytics_dirty (desk_id, span) VALUES (OLD.desk_id, OLD.period);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO analytics_dirty (desk_id, span) VALUES (NEW.desk_id, NEW.period);
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER analytics_bookings_dirty
AFTER UPDATE OR DELETE ON bookings
FOR EACH ROW EXECUTE FUNCTION analytics_bookings_dirty();
