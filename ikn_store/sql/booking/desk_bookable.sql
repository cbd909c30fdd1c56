-- The rule "desk bookable": a disabled desk is never booked; one assigned to a person
-- only for that person, or by a manager (a facility manager books for anyone). The
-- booking INSERTs (ikn_store/bookings.py, book_batch) call it; Python's check_desk
-- (ikn_store/booking_places.py) says which part failed, and tests/test_sql_rules.py
-- holds the two to the same answers. Inlined by the planner (one SELECT, IMMUTABLE).
CREATE OR REPLACE FUNCTION desk_bookable(
    disabled boolean, assigned_to text, person text, manager boolean
) RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT NOT disabled AND (assigned_to IS NULL OR assigned_to = person OR manager)
$$;
