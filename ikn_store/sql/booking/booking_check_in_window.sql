-- The rule "check-in window": a booking may be checked in from `opens` before its start
-- until its end. `opens` is ikn_core.booking.CHECK_IN_OPENS_BEFORE, passed in by the
-- ingest (ikn_store/readings.py); the app's check-in (ikn_core.booking.check_in_window)
-- is held to the same window by tests/test_sql_rules.py.
CREATE OR REPLACE FUNCTION booking_check_in_window(period tstzrange, opens interval)
RETURNS tstzrange LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT tstzrange(lower(period) - opens, upper(period), '[)')
$$;
