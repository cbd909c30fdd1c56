-- A scan of the kiosk's door code (issue 19) checks in the person's booking of that day
-- in the building, as a badge tap at the door does (attendance_door_bookings): its
-- check-in signal is `door`.
ALTER TABLE bookings DROP CONSTRAINT bookings_check_in_signal_check,
    ADD CONSTRAINT bookings_check_in_signal_check
        CHECK (check_in_signal IN ('app', 'badge', 'sensor', 'door'));
