-- Functions no caller uses any more: ingest_staged (the ingest's write before
-- ingest_derive) and ingest_mark_dirty (its dirty-marking; analytics_mark_readings now).
DROP FUNCTION IF EXISTS ingest_staged(interval, interval, boolean);
DROP FUNCTION IF EXISTS ingest_mark_dirty();
