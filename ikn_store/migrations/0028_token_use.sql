-- API tokens (issue 16): when each was last used (written by the API's token lookup at
-- most every few minutes per token, for `ikn token list`), and tokens of a person no
-- longer live for ever. A person's token that had no expiry gets one 90 days from this
-- migration (the default of `ikn token create`), so nobody is locked out at once; tokens
-- of no one (services) keep theirs.
ALTER TABLE api_tokens ADD COLUMN last_used_at timestamptz;

UPDATE api_tokens SET expires_at = now() + interval '90 days'
WHERE person_id IS NOT NULL AND expires_at IS NULL;
