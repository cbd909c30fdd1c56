-- The ingest's batch summary as a row type: ingest_derive parses the summary JSON once
-- into an array of these and hands it to its steps, which took the JSON and parsed it
-- again each (ikn_store/sql/ingest/ingest_derive.sql). The steps' JSON forms go; their
-- sources create the array forms.
CREATE TYPE ingest_summary AS (
    device_id text, kind text, ts timestamptz, seen timestamptz,
    occupied boolean, last_occupied boolean
);
DROP FUNCTION IF EXISTS analytics_mark_readings(json);
DROP FUNCTION IF EXISTS desk_state_from_readings(json, interval);
DROP FUNCTION IF EXISTS device_last_seen(json);
DROP FUNCTION IF EXISTS booking_sensor_check_in(json, interval);
DROP FUNCTION IF EXISTS attendance_desk_occupied(json);
