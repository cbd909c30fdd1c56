-- Sessions of the staff pages (web/). The id a browser holds in its cookie is 256 random
-- bits; only its SHA-256 is stored, so a copy of this table signs no one in. A session
-- without a person is a visitor's before signing in (it carries the CSRF token of the
-- login form); signing in replaces it with a new one. Idle and absolute limits are
-- settings (IKN_WEB_SESSION_IDLE_S, IKN_WEB_SESSION_MAX_S): `expires_at` is the absolute
-- end, `seen_at` the last request.
CREATE TABLE web_sessions (
    id_hash    bytea PRIMARY KEY CHECK (length(id_hash) = 32),
    person_id  text REFERENCES people ON DELETE CASCADE,
    csrf_token text NOT NULL CHECK (length(csrf_token) >= 32),
    created_at timestamptz NOT NULL DEFAULT now(),
    seen_at    timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    CHECK (expires_at > created_at)
);
CREATE INDEX web_sessions_person ON web_sessions (person_id);
CREATE INDEX web_sessions_expires ON web_sessions (expires_at);
