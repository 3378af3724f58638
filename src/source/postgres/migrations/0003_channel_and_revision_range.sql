-- The NOTIFY channel of the policies in `schema`. PostgreSQL refuses channel names of 64 bytes
-- or more, so a schema name too long to fit after the prefix is hashed. Replicas ask this
-- function for the channel to LISTEN on, so both ends always agree.
CREATE FUNCTION cross_api_channel(schema text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT 'cross_api.' || CASE WHEN octet_length(schema) <= 53 THEN schema ELSE md5(schema) END
$$;

CREATE OR REPLACE FUNCTION cross_api_touch() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    next bigint;
BEGIN
    UPDATE cross_api_revision SET value = value + 1, xact = txid_current()
        WHERE xact IS DISTINCT FROM txid_current()
        RETURNING value INTO next;
    IF next IS NOT NULL THEN
        PERFORM pg_notify(cross_api_channel(TG_TABLE_SCHEMA), next::text);
    END IF;
    RETURN NULL;
END
$$;

-- A snapshot's revision is at most 2^53 - 1, the largest integer JSON carries exactly; a
-- change past it would be accepted here and refused by every replica.
ALTER TABLE cross_api_revision
    ADD CONSTRAINT cross_api_revision_in_range CHECK (value <= 9007199254740991);
