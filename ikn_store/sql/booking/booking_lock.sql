-- Two conflicting inserts at the same moment can each wait for the other inside the
-- exclusion check, until the deadlock detector (deadlock_timeout, 1 s) aborts one.
-- Bookers therefore first take transaction-level advisory locks on the desk and the
-- person, always in the same order: conflicting bookings queue for a few microseconds
-- instead, and the loser meets a committed row and fails at once. The exclusion
-- constraints on bookings stay the guarantee; the locks only make contention cheap.
-- book_batch() takes the same locks (same keys, ascending order).
CREATE OR REPLACE FUNCTION booking_lock(desk text, person text) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    a bigint := hashtextextended('ikn.desk:' || desk, 0);
    b bigint := hashtextextended('ikn.person:' || person, 0);
BEGIN
    PERFORM pg_advisory_xact_lock(least(a, b));
    IF a <> b THEN
        PERFORM pg_advisory_xact_lock(greatest(a, b));
    END IF;
    RETURN true;
END
$$;
