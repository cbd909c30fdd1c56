-- A service account may carry a name after its role: svc.ingest-1, svc.ingest-2, ...
-- The broker binds each client id to its user name (use_username_as_clientid), so two
-- processes connected at once with one account evict each other: every ingest replica
-- needs its own account, with the ingest's ACL (the role decides the ACL, the name is
-- the account's). "svc.ingest" itself stays valid. The dot keeps service accounts apart
-- from device ids, which cannot hold one.

ALTER TABLE broker_accounts
    DROP CONSTRAINT broker_accounts_username_check,
    DROP CONSTRAINT broker_accounts_check,
    ADD CONSTRAINT broker_accounts_username_check
        CHECK (username ~ '^svc\.(ingest|api|sim)(-[a-z0-9]+)*$' AND length(username) <= 64),
    ADD CONSTRAINT broker_accounts_check
        CHECK (username = 'svc.' || role OR starts_with(username, 'svc.' || role || '-'));
