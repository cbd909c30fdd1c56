-- Attendance that no device can forge or backdate (issue 16).
--
-- 1. Badge taps count only from a badge reader at a door: a device of kind
--    badge_reader placed in a building (every device is) and at no desk. The ingest
--    dead-letters a tap from any other device first (wrong_kind: not a badge reader;
--    not_at_door: a reader placed at a desk); attendance_badge_taps takes taps only from
--    such readers too, so no other path makes one a signal or a check-in.
-- 2. A tap is stored with the time it was received (attendance_signals.received_at), and
--    checks in a booking only when it was received before the booking ended: a tap
--    replayed or backdated after the day cannot check in that day's booking; nor can a
--    desk sensor's reading (the newest receipt of its summary entry, "seen"). A device's
--    signal received more than the policy's corrections.late_signal_hours after its time
--    is "late": evidence that counts only once a correction request citing it
--    (attendance_requests.evidence) is approved, which sets accepted_by
--    (ikn_store/attendance_days.py).
-- 3. The dirty-day job audits every record it changes: attendance_audit.signals holds
--    the ids of the signals that were new to the record.

ALTER TABLE attendance_requests ADD COLUMN evidence bigint[] NOT NULL DEFAULT '{}';
ALTER TABLE attendance_signals
    ADD COLUMN accepted_by uuid REFERENCES attendance_requests ON DELETE SET NULL;
ALTER TABLE attendance_audit ADD COLUMN signals text[] NOT NULL DEFAULT '{}';
