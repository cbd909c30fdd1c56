-- Personal data protection (UU 27/2022, issue 20): a log of who viewed whose attendance
-- (a unit's month, its CSV, its TPP export, the year's absences, one person's day), which the person
-- sees (GET /api/v1/me/access-log, the My attendance page); and the indexes the
-- retention job (ikn_service/retention.py) deletes by, so that its hourly round reads
-- only what is past each period.
CREATE TABLE attendance_access (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    subject_id  text NOT NULL REFERENCES people ON DELETE CASCADE,
    -- the viewer: a person, or a token of no one (an admin's service token) by its name
    viewer_id   text REFERENCES people ON DELETE SET NULL,
    viewer_name text NOT NULL,
    viewer_role text NOT NULL,
    what        text NOT NULL CHECK (what IN ('unit_month', 'unit_csv', 'tpp', 'absences', 'day')),
    period      text NOT NULL,  -- the month (YYYY-MM), year (YYYY) or day (YYYY-MM-DD)
    channel     text NOT NULL CHECK (channel IN ('api', 'web'))
);
CREATE INDEX attendance_access_subject ON attendance_access (subject_id, at);
CREATE INDEX attendance_access_viewer ON attendance_access (viewer_id);
CREATE INDEX attendance_access_at ON attendance_access (at);

CREATE INDEX attendance_signals_at ON attendance_signals (at);
CREATE INDEX attendance_audit_at ON attendance_audit (at);
CREATE INDEX attendance_days_day ON attendance_days (day);
CREATE INDEX api_tokens_expires ON api_tokens (expires_at) WHERE person_id IS NOT NULL;
