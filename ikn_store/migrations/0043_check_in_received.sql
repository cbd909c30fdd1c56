-- A booking checked in from a phone that was offline carries the phone's time
-- (checked_in_at, the event's) and the server's receipt time (issue 18,
-- ikn_core.attendance.sent). NULL: received at once (or by a sensor or badge).
ALTER TABLE bookings ADD COLUMN check_in_received_at timestamptz;
