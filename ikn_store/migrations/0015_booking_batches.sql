-- Group commit for bookings (ikn_store/bookings.py book_batch, api/coalesce.py): the
-- bookings that reach the API at the same moment are made in one transaction, one
-- round trip and one commit, each still answered on its own (booked, or why not).
--
-- Correctness is the single path's: the exclusion constraints of 0003 decide, item by
-- item, inside a subtransaction (the EXCEPTION block) so a refused item leaves the
-- others standing. The batch first takes the advisory locks of every desk and person
-- it touches, in ascending order; booking_lock() takes its two in the same order, so
-- batches and single bookings queue behind each other instead of deadlocking, and an
-- INSERT never waits on another transaction's uncommitted booking. An item that
-- conflicts with an earlier item of the same batch is refused like any other.
-- Batches stay under 64 items (BATCH_MAX in ikn_store/bookings.py): a transaction
-- with more subtransactions than that slows every other backend's snapshots.
CREATE FUNCTION book_batch(
    desks text[], persons text[], starts timestamptz[], ends timestamptz[],
    bookers text[], fingerprints text[], managers boolean[])
RETURNS TABLE (ord integer, outcome text, id uuid, desk_id text, person_id text,
               start timestamptz, "end" timestamptz, status text,
               checked_in_at timestamptz, check_in_signal text, created_by text,
               created_at timestamptz, series_id uuid)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    h bigint;
    i integer;
    k bookings;
    broken text;
BEGIN
    FOR h IN
        SELECT hashtextextended('ikn.desk:' || d, 0) FROM unnest(desks) d
        UNION
        SELECT hashtextextended('ikn.person:' || p, 0) FROM unnest(persons) p
        ORDER BY 1
    LOOP
        PERFORM pg_advisory_xact_lock(h);
    END LOOP;
    FOR i IN 1 .. cardinality(desks) LOOP
        ord := i;
        id := NULL;  -- a refusal carries only ord and outcome
        IF NOT EXISTS (
            SELECT 1 FROM desk_booking_places p
            WHERE p.desk_id = desks[i] AND p.fingerprint = fingerprints[i]
              AND NOT p.disabled
              AND (p.assigned_to IS NULL OR p.assigned_to = persons[i] OR managers[i])) THEN
            outcome := 'place-changed';  -- the caller reads the place again, as after book()
            RETURN NEXT;
            CONTINUE;
        END IF;
        BEGIN
            INSERT INTO bookings (desk_id, person_id, period, created_by)
            VALUES (desks[i], persons[i], tstzrange(starts[i], ends[i], '[)'), bookers[i])
            RETURNING * INTO k;
        EXCEPTION WHEN exclusion_violation THEN
            GET STACKED DIAGNOSTICS broken = CONSTRAINT_NAME;
            outcome := CASE broken WHEN 'bookings_person_no_overlap' THEN 'person-taken'
                                   ELSE 'desk-taken' END;
            RETURN NEXT;
            CONTINUE;
        END;
        outcome := 'booked';
        id := k.id;
        desk_id := k.desk_id;
        person_id := k.person_id;
        start := lower(k.period);
        "end" := upper(k.period);
        status := k.status;
        checked_in_at := k.checked_in_at;
        check_in_signal := k.check_in_signal;
        created_by := k.created_by;
        created_at := k.created_at;
        series_id := k.series_id;
        RETURN NEXT;
    END LOOP;
END
$$;
