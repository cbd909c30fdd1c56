-- Attendance: badges (pseudonymous token -> person), the signals ledger, daily
-- records with the days waiting to be (re)computed, leave / official travel /
-- correction requests, and an audit trail. Days are local days in the person's
-- home building's zone (Asia/Makassar when the person has none).

-- Where a building is and whose it is: geofence for office check-ins by app,
-- and "WFO at another agency's building".
ALTER TABLE buildings
    ADD COLUMN lat double precision CHECK (lat BETWEEN -90 AND 90),
    ADD COLUMN lon double precision CHECK (lon BETWEEN -180 AND 180),
    ADD COLUMN agency text;

-- Only the token the edge agent computes (HMAC of the card number) is kept.
CREATE TABLE badges (
    token       text PRIMARY KEY CHECK (token ~ '^b1:[A-Za-z0-9_-]{43}$'),
    person_id   text NOT NULL REFERENCES people ON DELETE CASCADE,
    enrolled_at timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
CREATE INDEX badges_person ON badges (person_id);

-- Taps whose token nobody is enrolled with: counted, never an error.
CREATE TABLE badge_unknown_taps (
    device_id text NOT NULL REFERENCES devices ON DELETE CASCADE,
    day       date NOT NULL,
    taps      bigint NOT NULL,
    PRIMARY KEY (device_id, day)
);

CREATE TABLE attendance_signals (
    id          bigserial PRIMARY KEY,
    person_id   text NOT NULL REFERENCES people ON DELETE CASCADE,
    kind        text NOT NULL CHECK (kind IN ('badge_in', 'badge_out', 'booking_check_in',
                                             'desk_occupied', 'app_check_in', 'app_check_out',
                                             'correction_in', 'correction_out')),
    at          timestamptz NOT NULL,
    place_type  text NOT NULL CHECK (place_type IN ('office', 'other_office', 'home', 'field')),
    building_id text REFERENCES buildings ON DELETE SET NULL,
    -- audit: 'reading:<device>/<stream>/<seq>', 'booking:<id>', 'api:<uuid>', 'request:<id>'
    source      text NOT NULL,
    lat         double precision,
    lon         double precision,
    accuracy_m  real,
    received_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT attendance_signals_once UNIQUE (source, kind)
);
CREATE INDEX attendance_signals_person_at ON attendance_signals (person_id, at);
CREATE INDEX attendance_signals_coordinates ON attendance_signals (at) WHERE lat IS NOT NULL;

-- (person, day) whose record must be computed again.
CREATE TABLE attendance_dirty (
    person_id text NOT NULL REFERENCES people ON DELETE CASCADE,
    day       date NOT NULL,
    marked_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (person_id, day)
);

CREATE TABLE attendance_days (
    person_id      text NOT NULL REFERENCES people ON DELETE CASCADE,
    day            date NOT NULL,
    mode           text NOT NULL,
    clock_in       timestamptz,
    clock_out      timestamptz,
    minutes_worked integer NOT NULL DEFAULT 0,
    late_minutes   integer NOT NULL DEFAULT 0,
    early_departure_minutes integer NOT NULL DEFAULT 0,
    missing_clock_in  boolean NOT NULL DEFAULT false,
    missing_clock_out boolean NOT NULL DEFAULT false,
    excuse_id      text,
    record         jsonb NOT NULL,  -- the whole computed record: reasons, signal ids
    policy_version text NOT NULL,
    computed_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (person_id, day)
);

-- Leave (cuti), official travel (dinas luar) and corrections, each approved by a
-- supervisor of the requester's agency and unit, never by the requester.
CREATE TABLE attendance_requests (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    person_id    text NOT NULL REFERENCES people ON DELETE CASCADE,
    kind         text NOT NULL CHECK (kind IN ('cuti', 'dinas_luar', 'correction')),
    days         daterange NOT NULL CHECK (NOT isempty(days) AND NOT upper_inf(days)),
    clock_in     timestamptz,
    clock_out    timestamptz,
    reason       text NOT NULL CHECK (length(reason) BETWEEN 1 AND 1000),
    status       text NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'approved', 'rejected')),
    requested_by text NOT NULL REFERENCES people ON DELETE CASCADE,
    requested_at timestamptz NOT NULL DEFAULT now(),
    decided_by   text REFERENCES people ON DELETE SET NULL,
    decided_at   timestamptz,
    CHECK (decided_by IS NULL OR decided_by <> requested_by)
);
CREATE INDEX attendance_requests_person ON attendance_requests (person_id, status);

CREATE TABLE attendance_audit (
    id         bigserial PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    actor      text NOT NULL,
    action     text NOT NULL,
    request_id uuid REFERENCES attendance_requests ON DELETE SET NULL,
    person_id  text NOT NULL,
    day        date,
    before     jsonb,
    after      jsonb
);
CREATE INDEX attendance_audit_person ON attendance_audit (person_id, day);
