-- The ingest's batch summary as a row type: ingest_derive parses the summary JSON once
-- into an array of these and hands it to its steps (ingest/ingest_derive.sql). A type
-- cannot be replaced as a function can: created once, here, before the functions that
-- take it (they name this file); a change to its fields needs a migration that drops
-- it and its functions first.
DO $$
BEGIN
    CREATE TYPE ingest_summary AS (
        device_id text, kind text, ts timestamptz, seen timestamptz,
        occupied boolean, last_occupied boolean
    );
EXCEPTION WHEN duplicate_object THEN
    NULL;
END
$$;
