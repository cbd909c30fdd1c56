-- Every change of a desk's live state, numbered, for the live stream (SSE) and its
-- resumption with Last-Event-ID. Written by the trigger desk_state_events
-- (ikn_store/sql/occupancy/desk_state_changed.sql).

CREATE TABLE desk_events (
    id          bigserial PRIMARY KEY,
    desk_id     text NOT NULL REFERENCES desks ON DELETE CASCADE,
    device_id   text NOT NULL,
    occupied    boolean NOT NULL,
    at          timestamptz NOT NULL,          -- the device's clock: when it changed
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX desk_events_recorded ON desk_events (recorded_at);
