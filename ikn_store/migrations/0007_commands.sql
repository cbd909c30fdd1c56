-- Commands sent to a device on its `down` topic (config, identify, reboot) and their
-- results. The device answers with a `command_result` reading (contract v1); the
-- trigger below records the answer in the transaction that stores the reading, so a
-- result is kept exactly once, whoever stored it. A command not answered by
-- expires_at shows as expired (computed when read: nothing has to run on time).

CREATE TABLE device_commands (
    id           text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_-]{1,64}$'),
    device_id    text NOT NULL REFERENCES devices ON DELETE CASCADE,
    cmd          text NOT NULL CHECK (cmd IN ('config', 'identify', 'reboot')),
    payload      jsonb NOT NULL,                 -- as published on the down topic
    issued_by    text NOT NULL,                  -- the API principal's name
    issued_at    timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    ok           boolean,                        -- NULL until the device answers
    detail       text,
    answered_at  timestamptz,                    -- the device's clock (the reading's ts)
    CHECK (expires_at > issued_at)
);
CREATE INDEX device_commands_by_device ON device_commands (device_id, issued_at DESC);

CREATE FUNCTION command_result_stored() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE device_commands
    SET ok = (NEW.body->>'ok')::boolean, detail = NEW.body->>'detail', answered_at = NEW.ts
    WHERE id = NEW.body->>'command' AND device_id = NEW.device_id AND ok IS NULL;
    RETURN NULL;
END
$$;

-- Only rows actually inserted fire it (a duplicate is dropped by ON CONFLICT first);
-- the WHEN clause keeps other readings off the function call.
CREATE TRIGGER readings_command_result
AFTER INSERT ON readings
FOR EACH ROW WHEN (NEW.kind = 'command_result')
EXECUTE FUNCTION command_result_stored();
