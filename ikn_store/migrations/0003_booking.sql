-- Hot-desk booking: people (linked to their API tokens), per-building booking
-- rules, and bookings. The database itself refuses a desk booked twice for
-- overlapping times and a person holding two overlapping bookings (exclusion
-- constraints over tstzrange, active statuses only), whatever the API does.

CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE people (
    id               text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_.@-]{1,64}$'),
    name             text NOT NULL,
    agency           text NOT NULL,
    unit             text NOT NULL,
    role             text NOT NULL DEFAULT 'employee'
                     CHECK (role IN ('employee', 'delegate', 'supervisor', 'facility_manager', 'admin')),
    home_building_id text REFERENCES buildings ON DELETE SET NULL
);
CREATE INDEX people_unit ON people (agency, unit);

ALTER TABLE api_tokens ADD COLUMN person_id text REFERENCES people ON DELETE CASCADE;
CREATE INDEX api_tokens_person ON api_tokens (person_id);

-- Overrides of the default booking rules for one building; NULL keeps the default.
-- Allowed hours are minutes after local midnight in the building's zone (0..1440).
CREATE TABLE booking_rules (
    building_id    text PRIMARY KEY REFERENCES buildings ON DELETE CASCADE,
    max_days_ahead integer CHECK (max_days_ahead BETWEEN 0 AND 366),
    min_minutes    integer CHECK (min_minutes BETWEEN 1 AND 1440),
    max_minutes    integer CHECK (max_minutes BETWEEN 1 AND 10080),
    opens_minute   integer CHECK (opens_minute BETWEEN 0 AND 1439),
    closes_minute  integer CHECK (closes_minute BETWEEN 1 AND 1440),
    CHECK (opens_minute IS NULL OR closes_minute IS NULL OR opens_minute < closes_minute)
);

CREATE TABLE bookings (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    desk_id         text NOT NULL REFERENCES desks ON DELETE CASCADE,
    person_id       text NOT NULL REFERENCES people ON DELETE CASCADE,
    period          tstzrange NOT NULL,
    status          text NOT NULL DEFAULT 'booked'
                    CHECK (status IN ('booked', 'checked_in', 'cancelled', 'released')),
    checked_in_at   timestamptz,
    check_in_signal text CHECK (check_in_signal IN ('app', 'badge', 'sensor')),
    created_by      text NOT NULL REFERENCES people ON DELETE CASCADE,
    idempotency_key text CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    created_at      timestamptz NOT NULL DEFAULT now(),
    ended_at        timestamptz,  -- when it was cancelled or released
    CHECK (NOT isempty(period) AND lower_inc(period) AND NOT upper_inc(period)
           AND NOT lower_inf(period) AND NOT upper_inf(period)),
    CHECK (status <> 'checked_in' OR checked_in_at IS NOT NULL),
    CHECK ((checked_in_at IS NULL) = (check_in_signal IS NULL)),
    CONSTRAINT bookings_idempotency UNIQUE (created_by, idempotency_key),
    CONSTRAINT bookings_desk_no_overlap
        EXCLUDE USING gist (desk_id WITH =, period WITH &&)
        WHERE (status IN ('booked', 'checked_in')),
    CONSTRAINT bookings_person_no_overlap
        EXCLUDE USING gist (person_id WITH =, period WITH &&)
        WHERE (status IN ('booked', 'checked_in'))
);
CREATE INDEX bookings_person_period ON bookings USING gist (person_id, period);
CREATE INDEX bookings_desk_period ON bookings USING gist (desk_id, period);
