-- Every change of a desk's live state, numbered, for the live stream (SSE) and its
-- resumption with Last-Event-ID. Written by a trigger, so whatever writes desk_state
-- (the ingest, in the transaction that stored the reading) produces the event, and
-- LISTENers on 'ikn_desk_events' hear the new id when that transaction commits.

CREATE TABLE desk_events (
    id          bigserial PRIMARY KEY,
    desk_id     text NOT NULL REFERENCES desks ON DELETE CASCADE,
    device_id   text NOT NULL,
    occupied    boolean NOT NULL,
    at          timestamptz NOT NULL,          -- the device's clock: when it changed
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX desk_events_recorded ON desk_events (recorded_at);

CREATE FUNCTION desk_state_changed() RETURNS trigger LANGUAGE plpgsql AS $$
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

CREATE TRIGGER desk_state_events
AFTER INSERT OR UPDATE ON desk_state
FOR EACH ROW EXECUTE FUNCTION desk_state_changed();
