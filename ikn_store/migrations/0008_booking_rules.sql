-- Booking rules per zone (overriding the building's, field by field), restricted
-- zones, the cancellation cut-off, check-out and recurring series.

ALTER TABLE booking_rules
    ADD COLUMN cancel_cutoff_minutes integer CHECK (cancel_cutoff_minutes BETWEEN 0 AND 10080);

-- Overrides for one zone; NULL keeps the building's value. Hours and durations are
-- overridden as pairs, so the rules in force always stay consistent.
CREATE TABLE zone_booking_rules (
    zone_id               text PRIMARY KEY REFERENCES zones ON DELETE CASCADE,
    max_days_ahead        integer CHECK (max_days_ahead BETWEEN 0 AND 366),
    min_minutes           integer CHECK (min_minutes BETWEEN 1 AND 1440),
    max_minutes           integer CHECK (max_minutes BETWEEN 1 AND 10080),
    opens_minute          integer CHECK (opens_minute BETWEEN 0 AND 1439),
    closes_minute         integer CHECK (closes_minute BETWEEN 1 AND 1440),
    cancel_cutoff_minutes integer CHECK (cancel_cutoff_minutes BETWEEN 0 AND 10080),
    CHECK ((opens_minute IS NULL) = (closes_minute IS NULL)),
    CHECK (opens_minute IS NULL OR opens_minute < closes_minute),
    CHECK ((min_minutes IS NULL) = (max_minutes IS NULL)),
    CHECK (min_minutes IS NULL OR min_minutes <= max_minutes)
);

-- A zone with rows here is restricted: only people of a listed agency (unit NULL:
-- the whole agency) or of a listed agency's unit may book its desks.
CREATE TABLE zone_access (
    zone_id text NOT NULL REFERENCES zones ON DELETE CASCADE,
    agency  text NOT NULL,
    unit    text
);
CREATE UNIQUE INDEX zone_access_entry ON zone_access (zone_id, agency, coalesce(unit, ''));

-- Check-out ends a checked-in booking early; the booking stays, no longer active.
ALTER TABLE bookings DROP CONSTRAINT bookings_status_check;
ALTER TABLE bookings ADD CONSTRAINT bookings_status_check
    CHECK (status IN ('booked', 'checked_in', 'checked_out', 'cancelled', 'released'));

-- Recurring bookings: the occurrences of one series share its id.
ALTER TABLE bookings ADD COLUMN series_id uuid;
CREATE INDEX bookings_series ON bookings (series_id) WHERE series_id IS NOT NULL;
