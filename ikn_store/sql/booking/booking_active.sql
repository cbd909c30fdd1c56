-- The rule "active booking": booked or checked in (ikn_core.booking.ACTIVE). An active
-- booking holds its desk and its person (the exclusion constraints of bookings use the
-- same statuses in their WHERE; tests/test_sql_rules.py checks all three agree).
-- Inlined by the planner, so a partial index on the same statuses still applies.
CREATE OR REPLACE FUNCTION booking_active(status text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT status IN ('booked', 'checked_in')
$$;
