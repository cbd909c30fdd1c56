-- A device answers a command (device_commands) with a command_result reading; this
-- records the answer in the transaction that stores the reading, so a result is kept
-- exactly once, whoever stored it. Only rows actually inserted fire it (a duplicate
-- is dropped by ON CONFLICT first); the WHEN clause keeps other readings off the call.
CREATE OR REPLACE FUNCTION command_result_stored() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE device_commands
    SET ok = (NEW.body->>'ok')::boolean, detail = NEW.body->>'detail', answered_at = NEW.ts
    WHERE id = NEW.body->>'command' AND device_id = NEW.device_id AND ok IS NULL;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER readings_command_result
AFTER INSERT ON readings
FOR EACH ROW WHEN (NEW.kind = 'command_result')
EXECUTE FUNCTION command_result_stored();
