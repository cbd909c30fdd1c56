-- The broker's accounts follow the registry by themselves (`ikn broker-sync`, see
-- deploy/mosquitto/README.md): any change to who may log in to Mosquitto, with which
-- password hash (a service account created, rotated or removed; a device registered,
-- disabled, enabled, removed or given a new password), notifies 'ikn_broker_accounts'
-- at commit. The payload is empty: the listener writes the whole passwd and acl again
-- (PostgreSQL folds the notifications of one transaction into one).
CREATE OR REPLACE FUNCTION broker_accounts_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ikn_broker_accounts', '');
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER broker_accounts_notify
AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON broker_accounts
FOR EACH STATEMENT EXECUTE FUNCTION broker_accounts_notify();

CREATE OR REPLACE TRIGGER device_credentials_notify
AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON device_credentials
FOR EACH STATEMENT EXECUTE FUNCTION broker_accounts_notify();

CREATE OR REPLACE TRIGGER devices_enabled_notify
AFTER INSERT OR DELETE OR UPDATE OF enabled OR TRUNCATE ON devices
FOR EACH STATEMENT EXECUTE FUNCTION broker_accounts_notify();
