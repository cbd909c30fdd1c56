-- A person's secret calendar address (issue 18): /feeds/bookings/<secret>.ics serves
-- their bookings to a calendar app that subscribes, without a session. The secret is
-- 256 random bits shown to its person only; this table keeps its SHA-256, so a copy of
-- it opens no one's calendar. One address per person: making a new one replaces the row,
-- and the old address stops working at once.
CREATE TABLE booking_feeds (
    person_id   text PRIMARY KEY REFERENCES people ON DELETE CASCADE,
    secret_hash bytea NOT NULL UNIQUE CHECK (length(secret_hash) = 32),
    created_at  timestamptz NOT NULL DEFAULT now()
);
