-- Foundation: the space hierarchy, devices, readings (partitioned by time),
-- live desk state, dead letters and API tokens. Times are timestamptz; days are
-- computed in each building's IANA zone, never in the server's.

CREATE TABLE buildings (
    id   text PRIMARY KEY,
    name text NOT NULL,
    tz   text NOT NULL DEFAULT 'Asia/Makassar'
);

CREATE TABLE floors (
    id          text PRIMARY KEY,
    building_id text NOT NULL REFERENCES buildings ON DELETE CASCADE,
    name        text NOT NULL,
    level       integer NOT NULL
);
CREATE INDEX floors_building ON floors (building_id);

CREATE TABLE zones (
    id       text PRIMARY KEY,
    floor_id text NOT NULL REFERENCES floors ON DELETE CASCADE,
    name     text NOT NULL
);
CREATE INDEX zones_floor ON zones (floor_id);

CREATE TABLE desks (
    id        text PRIMARY KEY,
    zone_id   text NOT NULL REFERENCES zones ON DELETE CASCADE,
    name      text NOT NULL,
    x         real NOT NULL,
    y         real NOT NULL,
    equipment text[] NOT NULL DEFAULT '{}'
);
CREATE INDEX desks_zone ON desks (zone_id);

CREATE TABLE devices (
    id            text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_-]{1,64}$'),
    kind          text NOT NULL
                  CHECK (kind IN ('desk_sensor', 'badge_reader', 'people_counter', 'environment')),
    building_id   text NOT NULL REFERENCES buildings,
    zone_id       text REFERENCES zones,
    desk_id       text REFERENCES desks,
    enabled       boolean NOT NULL DEFAULT true,
    registered_at timestamptz NOT NULL DEFAULT now(),
    CHECK (kind <> 'desk_sensor' OR desk_id IS NOT NULL)
);
CREATE UNIQUE INDEX devices_one_sensor_per_desk ON devices (desk_id) WHERE kind = 'desk_sensor';

-- Health from the retained status topic (online/offline, the Will) and last contact.
CREATE TABLE device_status (
    device_id  text PRIMARY KEY REFERENCES devices ON DELETE CASCADE,
    online     boolean,
    status     jsonb,
    status_at  timestamptz,
    last_seen  timestamptz
);

-- Every reading once: (device_id, stream, seq) is its identity, ts the device's clock.
-- The partition key must be in the primary key; a resent reading carries the same ts.
CREATE TABLE readings (
    device_id   text NOT NULL,
    stream      uuid NOT NULL,
    seq         bigint NOT NULL,
    ts          timestamptz NOT NULL,
    received_at timestamptz NOT NULL,
    kind        text NOT NULL,
    body        jsonb NOT NULL,
    PRIMARY KEY (device_id, stream, seq, ts)
) PARTITION BY RANGE (ts);
CREATE INDEX readings_kind_ts ON readings (kind, ts);

-- Live state of each desk, from the newest occupancy reading of its sensor.
CREATE TABLE desk_state (
    desk_id     text PRIMARY KEY REFERENCES desks ON DELETE CASCADE,
    device_id   text NOT NULL,
    occupied    boolean NOT NULL,
    since       timestamptz NOT NULL,
    reported_at timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);

-- Whatever did not fit the contract, kept whole with the reason.
CREATE TABLE dead_letters (
    id          bigserial PRIMARY KEY,
    received_at timestamptz NOT NULL,
    topic       text NOT NULL,
    device_id   text,
    reason      text NOT NULL,
    detail      text NOT NULL,
    payload     bytea NOT NULL
);
CREATE INDEX dead_letters_received ON dead_letters (received_at);

-- Bearer tokens for the API: only a SHA-256 of each token is kept.
CREATE TABLE api_tokens (
    token_hash bytea PRIMARY KEY,
    name       text NOT NULL,
    role       text NOT NULL
               CHECK (role IN ('employee', 'delegate', 'supervisor', 'facility_manager', 'admin')),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz
);
