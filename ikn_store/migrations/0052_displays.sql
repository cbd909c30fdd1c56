-- Lobby kiosks and desk displays (issue 19).
--
-- 1. A display signs in with a display token: a random secret shown once (`ikn display
--    create`), of which this table keeps the SHA-256 only. Each is bound to one
--    building: it opens that building's kiosk and the displays of its desks, never
--    another building's, a person's page or the API. No person is named here.
--    Revoking deletes the row; deleting the building deletes its tokens.
-- 2. Scanning the rotating code a kiosk shows at the door (ikn_core/door_code.py) is an
--    attendance signal of its own kind, door_qr: presence in the building at that time.
CREATE TABLE display_tokens (
    token_hash   bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    name         text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 100),
    building_id  text NOT NULL REFERENCES buildings ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz
);

ALTER TABLE attendance_signals DROP CONSTRAINT attendance_signals_kind_check,
    ADD CONSTRAINT attendance_signals_kind_check
        CHECK (kind IN ('badge_in', 'badge_out', 'booking_check_in', 'desk_occupied',
                        'app_check_in', 'app_check_out', 'correction_in', 'correction_out',
                        'door_qr'));
