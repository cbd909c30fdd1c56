-- A batch of bookings decided by one statement instead of one per item.
--
-- 0015's book_batch() inserted item by item, each in its own subtransaction, so each
-- paid a statement's start-up, a subtransaction, a place lookup and two row triggers:
-- at a morning rush most of PostgreSQL's time per booking. Holding the advisory locks
-- of every desk and person of the batch (taken first, as before), nothing can commit
-- or even insert a competing booking meanwhile, so the batch can look up every place
-- and every conflict with committed bookings at once, and insert the rest in one
-- multi-row INSERT. The exclusion constraints still decide: should two items of the
-- same batch collide with each other (which the lookups cannot see), the INSERT
-- raises, its subtransaction is undone, and the items are booked one by one exactly
-- as 0015 did, each refused or booked in order.
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
    -- The locks in ascending order, as 0015 took them, by one statement.
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
                    WHERE p.desk_id = i.desk AND p.fingerprint = i.fp AND NOT p.disabled
                      AND (p.assigned_to IS NULL OR p.assigned_to = i.person OR i.manager))
                    THEN 'place-changed'
                WHEN EXISTS (
                    SELECT 1 FROM bookings b
                    WHERE b.desk_id = i.desk AND b.period && i.period
                      AND b.status IN ('booked', 'checked_in'))
                    THEN 'desk-taken'
                WHEN EXISTS (
                    SELECT 1 FROM bookings b
                    WHERE b.person_id = i.person AND b.period && i.period
                      AND b.status IN ('booked', 'checked_in'))
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
                  AND NOT p.disabled
                  AND (p.assigned_to IS NULL OR p.assigned_to = persons[i] OR managers[i])) THEN
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

-- New bookings mark analytics dirty and notify desk displays once per statement (a
-- batch's INSERT holds many rows), from its transition table; updates and deletes
-- keep their row triggers.
CREATE FUNCTION analytics_bookings_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO analytics_dirty (desk_id, span) SELECT desk_id, period FROM new_bookings;
    RETURN NULL;
END
$$;

DROP TRIGGER analytics_bookings_dirty ON bookings;
CREATE TRIGGER analytics_bookings_dirty
AFTER UPDATE OR DELETE ON bookings
FOR EACH ROW EXECUTE FUNCTION analytics_bookings_dirty();
CREATE TRIGGER analytics_bookings_inserted
AFTER INSERT ON bookings REFERENCING NEW TABLE AS new_bookings
FOR EACH STATEMENT EXECUTE FUNCTION analytics_bookings_inserted();

CREATE FUNCTION bookings_display_notify_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ikn_booking_changes', d.desk_id)  -- one per desk and commit
    FROM (SELECT DISTINCT desk_id FROM new_bookings
          WHERE upper(period) > now() AND lower(period) < now() + interval '1 day') d;
    RETURN NULL;
END
$$;

DROP TRIGGER bookings_display_notify ON bookings;
CREATE TRIGGER bookings_display_notify
AFTER DELETE OR UPDATE OF status, period, desk_id, ended_at, checked_in_at
ON bookings FOR EACH ROW EXECUTE FUNCTION bookings_display_notify();
CREATE TRIGGER bookings_display_notify_inserted
AFTER INSERT ON bookings REFERENCING NEW TABLE AS new_bookings
FOR EACH STATEMENT EXECUTE FUNCTION bookings_display_notify_inserted();
