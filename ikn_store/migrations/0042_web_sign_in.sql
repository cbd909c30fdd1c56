-- Signing in to the staff pages with the identity provider (OIDC authorization code with
-- PKCE). A visitor's session holds the sign-in it started until the provider sends the
-- browser back: the `state` echoed back, the `nonce` the ID token must carry, the PKCE
-- verifier the token endpoint checks, the page to return to and when it started. The
-- callback takes them in one statement (single use). A signed-in session keeps the ID
-- token it was opened with, sent back as `id_token_hint` when signing out.
ALTER TABLE web_sessions
    ADD COLUMN oidc_state text,
    ADD COLUMN oidc_nonce text,
    ADD COLUMN oidc_verifier text,
    ADD COLUMN oidc_next text,
    ADD COLUMN oidc_started_at timestamptz,
    ADD COLUMN id_token text,
    ADD CONSTRAINT web_sessions_sign_in_whole CHECK (
        num_nulls(oidc_state, oidc_nonce, oidc_verifier, oidc_next, oidc_started_at) IN (0, 5)
    ),
    ADD CONSTRAINT web_sessions_sign_in_of_visitor CHECK (
        oidc_state IS NULL OR person_id IS NULL
    );
