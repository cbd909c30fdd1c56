-- Group commit for bookings (ikn_store/bookings.py book_batch, api/coalesce.py): the
-- bookings that reach the API at the same moment are made in one transaction, one
-- round trip and one commit, each answered on its own (booked, or why not).
--
-- The batch first takes the advisory locks of every desk and person it touches, in
-- ascending order; booking_lock() takes its two in the same order, so batches and
-- single bookings queue behind each other instead of deadlocking. Holding them,
-- nothing can commit or even insert a competing booking meanwhile, so the batch looks
-- up every place and every conflict with committed bookings at once and inserts the
-- rest in one multi-row INSERT. The exclusion constraints of bookings still decide:
-- should two items of the same batch collide with each other (which the lookups
-- cannot see), the INSERT raises, its subtransaction is undone, and the items are
-- booked one by one, each in its own subtransaction, refused or booked in order.
-- Batches stay under 64 items (BATCH_MAX in ikn_store/bookings.py): a transaction
-- with more subtransactions than that slows every other backend's snapshots.
CREATE OR REPLACE FUNCTION book_batch(
    desks text[], persons text[], starts timestamptz[], ends timestamptz[],
    bookers text[], fingerprints text[], managers boolean[])
RETURNS TABLE (ord integer, outcome text, id uuid, desk_id text, person_id text,
               start timestamptz, "end" timestamptz, status text,
               checked_in_at timestamptz, check_in_signal text, created_by text,
               created_at timestamptz, series_id uuid)
-- Planned once per connection: custom plans (PostgreSQL's first choice for a statement
-- with parameters) cost milliseconds each for this one, more than booking a small batch.
SET plan_cache_mode = force_generic_plan
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    i integer;
    k bookings;
    broken text;
    verdicts text[];
    made bookings[];
BEGIN
    -- The locks in ascending order, by one statement.
    PERFORM pg_advisory_xact_lock(l.h) FROM (
        SELECT hashtextextended('ikn.desk:' || d, 0) AS h FROM unnest(desks) d
        UNION
        SELECT hashtextextended('ikn.person:' || p, 0) FROM unnest(persons) p
        ORDER BY 1) l;
    BEGIN
        -- Into variables first: a collision raises before anything is returned.
        WITH item AS (
            SELECT u.n, u.desk, u.person, tstzrange(u.s, u.e, '[)') AS period, u.booker,
                   u.fp, u.manager
            FROM unnest(desks, persons, starts, ends, bookers, fingerprints, managers)
                 WITH ORDINALITY AS u(desk, person, s, e, booker, fp, manager, n)
        ), verdict AS (
            SELECT i.*, CASE
                WHEN NOT EXISTS (
                    SELECT 1 FROM desk_booking_places p
                    WHERE p.desk_id = i.desk AND p.fingerprint = i.fp
                      AND desk_bookable(p.disabled, p.assigned_to, i.person, i.manager))
                    THEN 'place-changed'
                WHEN EXISTS (
                    SELECT 1 FROM bookings b
                    WHERE b.desk_id = i.desk AND b.period && i.period
                      AND booking_active(b.status))
                    THEN 'desk-taken'
                WHEN EXISTS (
                    SELECT 1 FROM bookings b
                    WHERE b.person_id = i.person AND b.period && i.period
                      AND booking_active(b.status))
                    THEN 'person-taken'
                ELSE 'booked' END AS verdict
            FROM item i
        ), inserted AS (
            INSERT INTO bookings (desk_id, person_id, period, created_by)
            SELECT v.desk, v.person, v.period, v.booker FROM verdict v
            WHERE v.verdict = 'booked'
            RETURNING *
        )
        SELECT array_agg(v.verdict ORDER BY v.n), array_agg(ROW(b.*)::bookings ORDER BY v.n)
          INTO verdicts, made
          FROM verdict v LEFT JOIN inserted b
            ON v.verdict = 'booked' AND b.desk_id = v.desk AND b.person_id = v.person
           AND b.period = v.period;
    EXCEPTION WHEN exclusion_violation THEN
        verdicts := NULL;  -- items of this batch collide: decide them one by one below
    END;
    IF verdicts IS NULL THEN  -- (or the batch is empty)
        verdicts := '{}';
        made := '{}';
        FOR i IN 1 .. cardinality(desks) LOOP
            k := NULL;
            IF NOT EXISTS (
                SELECT 1 FROM desk_booking_places p
                WHERE p.desk_id = desks[i] AND p.fingerprint = fingerprints[i]
                  AND desk_bookable(p.disabled, p.assigned_to, persons[i], managers[i])) THEN
                verdicts[i] := 'place-changed';  -- the caller reads the place again
            ELSE
                BEGIN
                    INSERT INTO bookings (desk_id, person_id, period, created_by)
                    VALUES (desks[i], persons[i], tstzrange(starts[i], ends[i], '[)'),
                            bookers[i])
                    RETURNING * INTO k;
                    verdicts[i] := 'booked';
                EXCEPTION WHEN exclusion_violation THEN
                    GET STACKED DIAGNOSTICS broken = CONSTRAINT_NAME;
                    verdicts[i] := CASE broken WHEN 'bookings_person_no_overlap'
                                   THEN 'person-taken' ELSE 'desk-taken' END;
                END;
            END IF;
            made[i] := k;
        END LOOP;
    END IF;
    FOR i IN 1 .. cardinality(verdicts) LOOP  -- a refusal carries only ord and outcome
        ord := i;
        outcome := verdicts[i];
        k := made[i];
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
