-- The transaction's revision is marked in a transaction-local setting, not in a stored
-- transaction id: a database restored into another cluster carries the old cluster's ids,
-- and the one later transaction there that drew the carried id would neither move the
-- revision nor notify. The channel is named after the schema that holds cross_api_revision,
-- as replicas name it, not after the first schema of the search path the functions were
-- created with: a schema made later ahead of it (one named after the user, under the
-- default "$user", public) would otherwise take every notification.
CREATE OR REPLACE FUNCTION cross_api_next_revision() RETURNS bigint
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    xact text := txid_current()::text;
    mark text := current_setting('cross_api.revision', true);
    current bigint;
    home text;
BEGIN
    IF mark LIKE xact || ':%' THEN
        RETURN substr(mark, length(xact) + 2)::bigint;
    END IF;

    UPDATE cross_api_revision SET value = value + 1 RETURNING value INTO current;
    PERFORM set_config('cross_api.revision', xact || ':' || current, true);

    SELECT n.nspname INTO home
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.oid = 'cross_api_revision'::regclass;
    PERFORM pg_notify(cross_api_channel(home), current::text);
    RETURN current;
END
$$;

ALTER TABLE cross_api_revision DROP COLUMN xact;
