-- Booking rules per site (a campus of buildings, table sites from 0009): a building's
-- own values override its site's, field by field, and a zone's override both. NULL
-- keeps the value from the level above (the platform defaults at the top); the view
-- desk_booking_places applies them.

CREATE TABLE site_booking_rules (
    site_id               text PRIMARY KEY REFERENCES sites ON DELETE CASCADE,
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
