-- Every change of a desk's live state becomes a numbered desk_events row, whatever
-- writes desk_state (the ingest, in the transaction that stored the reading), and
-- LISTENers on 'ikn_desk_events' hear the new id when that transaction commits.
CREATE OR REPLACE FUNCTION desk_state_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    event_id bigint;
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.occupied = NEW.occupied THEN
        RETURN NEW;  -- a heartbeat, not a change
    END IF;
    INSERT INTO desk_events (desk_id, device_id, occupied, at)
    VALUES (NEW.desk_id, NEW.device_id, NEW.occupied, NEW.since)
    RETURNING id INTO event_id;
    PERFORM pg_notify('ikn_desk_events', event_id::text);
    RETURN NEW;
END
$$;

CREATE OR REPLACE TRIGGER desk_state_events
AFTER INSERT OR UPDATE ON desk_state
FOR EACH ROW EXECUTE FUNCTION desk_state_changed();
