-- Utilisation analytics: rollups kept up to date incrementally.
--
-- Whatever can change a figure (a desk or environment reading, late or not, and any
-- insert or change of a booking) marks a span of time dirty for its desk or zone in
-- analytics_dirty, in the writer's own transaction (ikn_store/sql/analytics/). A job
-- in the API process (ikn_store/rollups.py) takes the dirty spans and recomputes exactly those
-- 15-minute slots, local days and bookings from the raw tables; so a late reading
-- corrects a bucket that was already rolled up.

-- The agency that owns a zone; NULL: a shared zone.
ALTER TABLE zones ADD COLUMN IF NOT EXISTS agency text;

CREATE TABLE analytics_dirty (
    id      bigserial PRIMARY KEY,
    desk_id text,
    zone_id text,
    span    tstzrange NOT NULL,
    CHECK ((desk_id IS NULL) <> (zone_id IS NULL))
);

-- Per place and 15-minute slot, keyed by the slot's start in the building's local time
-- (slots start at UTC multiples of 15 minutes, local quarter hours in every zone with a
-- whole-quarter offset, Asia/Makassar among them).
CREATE TABLE analytics_slots (
    level             text NOT NULL CHECK (level IN ('zone', 'floor', 'building', 'agency')),
    place             text NOT NULL,
    local_start       timestamp NOT NULL,
    desks_live        integer NOT NULL,  -- desks whose sensor was live at some time in the slot
    desks_used        integer NOT NULL,  -- desks occupied at some time in the slot
    live_s            double precision NOT NULL,  -- desk-seconds with a live sensor
    occupied_s        double precision NOT NULL,  -- desk-seconds occupied
    booked_s          double precision NOT NULL,  -- desk-seconds booked
    occupied_booked_s double precision NOT NULL,  -- desk-seconds occupied while booked
    co2_sum           double precision NOT NULL,
    co2_n             integer NOT NULL,
    temp_sum          double precision NOT NULL,
    temp_n            integer NOT NULL,
    PRIMARY KEY (level, place, local_start)
);

-- Per place (desks too) and local day: the slot figures summed, with what frequency,
-- occupancy and peak need (slots with a live sensor, slots in use, the sum over used
-- slots of used/live desks, the most desks in use in one slot).
CREATE TABLE analytics_days (
    level             text NOT NULL CHECK (level IN ('desk', 'zone', 'floor', 'building', 'agency')),
    place             text NOT NULL,
    day               date NOT NULL,
    slots_live        integer NOT NULL,
    slots_used        integer NOT NULL,
    occ_sum           double precision NOT NULL,
    peak              integer NOT NULL,
    live_s            double precision NOT NULL,
    occupied_s        double precision NOT NULL,
    booked_s          double precision NOT NULL,
    occupied_booked_s double precision NOT NULL,
    co2_sum           double precision NOT NULL,
    co2_n             integer NOT NULL,
    temp_sum          double precision NOT NULL,
    temp_n            integer NOT NULL,
    PRIMARY KEY (level, place, day)
);

-- Per booking: its desk, local start and state, and what the desk's sensor saw while it
-- was booked. No foreign key, so that bookings can still be truncated; the refresh
-- deletes the rows of bookings that are gone.
CREATE TABLE analytics_booking_use (
    booking_id  uuid PRIMARY KEY,
    desk_id     text NOT NULL,
    local_start timestamp NOT NULL,
    status      text NOT NULL,
    checked_in  boolean NOT NULL,
    live_s      double precision NOT NULL,
    occupied_s  double precision NOT NULL
);
CREATE INDEX analytics_booking_use_start ON analytics_booking_use (local_start);
