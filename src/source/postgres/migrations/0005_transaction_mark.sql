-- The transaction's revision is marked in a transaction-local setting, not in a stored
-- transaction id: a database restored into another cluster carries the old cluster's ids,
-- and the one later transaction there that drew the carried id would neither move the
-- revision nor notify. The setting is named after the schema, so that one transaction that
-- changes two deployments (two schemas) bumps and notifies each.
CREATE OR REPLACE FUNCTION cross_api_next_revision() RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    home text := current_schema();
    setting text := 'cross_api.r' || md5(home);
    xact text := txid_current()::text;
    mark text := current_setting(setting, true);
    current bigint;
BEGIN
    IF mark LIKE xact || ':%' THEN
        RETURN substr(mark, length(xact) + 2)::bigint;
    END IF;

    UPDATE cross_api_revision SET value = value + 1 RETURNING value INTO current;
    PERFORM set_config(setting, xact || ':' || current, true);
    PERFORM pg_notify(cross_api_channel(home), current::text);
    RETURN current;
END
$$;

ALTER TABLE cross_api_revision DROP COLUMN xact;

-- Every function of the schema runs with the schema alone on its search path, then pg_temp.
-- They were created with the search path of the connection that migrated them (by default
-- "$user", public), which a schema made later (one named after the user, or a whole second
-- deployment in it) or a temporary table named like ours would take over: the triggers would
-- then bump, and notify, somewhere else.
DO $$
DECLARE
    home text := current_schema();
    ours regprocedure;
BEGIN
    FOR ours IN
        SELECT p.oid::regprocedure
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = home AND p.proname LIKE 'cross\_api\_%'
    LOOP
        EXECUTE format('ALTER FUNCTION %s SET search_path = %I, pg_temp', ours, home);
    END LOOP;
END
$$;
