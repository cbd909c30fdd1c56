-- The device fleet's broker credentials. Only hashes are kept, already in
-- Mosquitto's password-file format (PBKDF2-SHA512, "$7$iterations$salt$hash"), so
-- `ikn broker-config` writes the password file without ever knowing a password.
-- Device user names are their device ids ([A-Za-z0-9_-]); service accounts are
-- named "svc.<role>", with a dot no device id can hold, so the two never collide.

CREATE TABLE device_credentials (
    device_id     text PRIMARY KEY REFERENCES devices ON DELETE CASCADE,
    password_hash text NOT NULL CHECK (password_hash ~ '^\$7\$[0-9]+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$'),
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE broker_accounts (
    username      text PRIMARY KEY CHECK (username ~ '^svc\.(ingest|api|sim)$'),
    role          text NOT NULL CHECK (role IN ('ingest', 'api', 'sim')),
    password_hash text NOT NULL CHECK (password_hash ~ '^\$7\$[0-9]+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$'),
    created_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (username = 'svc.' || role)
);

-- How often a device is expected to report: past it (with no status saying otherwise)
-- the fleet view raises an "offline" alert.
ALTER TABLE devices ADD COLUMN expected_interval_s integer NOT NULL DEFAULT 300
    CHECK (expected_interval_s BETWEEN 10 AND 86400);
