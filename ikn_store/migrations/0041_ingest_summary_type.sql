-- The ingest's steps take the batch summary parsed once (ingest_summary[], the type in
-- ikn_store/sql/ingest/ingest_summary.sql) instead of its JSON: their JSON forms go.
DROP FUNCTION IF EXISTS analytics_mark_readings(json);
DROP FUNCTION IF EXISTS desk_state_from_readings(json, interval);
DROP FUNCTION IF EXISTS device_last_seen(json);
DROP FUNCTION IF EXISTS booking_sensor_check_in(json, interval);
DROP FUNCTION IF EXISTS attendance_desk_occupied(json);
