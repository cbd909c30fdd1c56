-- Commands sent to a device on its `down` topic (config, identify, reboot) and their
-- results. The device answers with a `command_result` reading (contract v1); the
-- trigger readings_command_result (ikn_store/sql/fleet/command_result_stored.sql)
-- records the answer in the transaction that stores the reading. A command not answered by
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
