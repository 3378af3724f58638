-- A target's own revision (what an administrator's If-Match is checked against) follows
-- every change of its policy and grants, a direct SQL one included.

-- The transaction's revision: bumped, and the replicas notified, once per transaction, on
-- its first change of the policies; the same value for every later change in it.
CREATE FUNCTION cross_api_next_revision() RETURNS bigint
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    current bigint;
BEGIN
    UPDATE cross_api_revision SET value = value + 1, xact = txid_current()
        WHERE xact IS DISTINCT FROM txid_current()
        RETURNING value INTO current;
    IF current IS NULL THEN
        SELECT value INTO current FROM cross_api_revision;
    ELSE
        PERFORM pg_notify(cross_api_channel(current_schema()), current::text);
    END IF;
    RETURN current;
END
$$;

CREATE OR REPLACE FUNCTION cross_api_touch() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    PERFORM cross_api_next_revision();
    RETURN NULL;
END
$$;

CREATE FUNCTION cross_api_policy_revision() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    NEW.revision := cross_api_next_revision();
    RETURN NEW;
END
$$;

CREATE TRIGGER cross_api_policy_revision BEFORE INSERT OR UPDATE ON cross_api_policies
    FOR EACH ROW EXECUTE FUNCTION cross_api_policy_revision();

-- A grant added, removed or moved changes its target's policy.
CREATE FUNCTION cross_api_grant_revision() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE cross_api_policies SET revision = revision
            WHERE tenant = OLD.tenant AND target = OLD.target;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        UPDATE cross_api_policies SET revision = revision
            WHERE tenant = NEW.tenant AND target = NEW.target;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER cross_api_grant_revision AFTER INSERT OR UPDATE OR DELETE ON cross_api_grants
    FOR EACH ROW EXECUTE FUNCTION cross_api_grant_revision();

-- TRUNCATE fires no row trigger: every policy may have lost grants, so every one moves.
CREATE FUNCTION cross_api_grants_truncated() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    UPDATE cross_api_policies SET revision = revision;
    RETURN NULL;
END
$$;

CREATE TRIGGER cross_api_grants_truncated AFTER TRUNCATE ON cross_api_grants
    FOR EACH STATEMENT EXECUTE FUNCTION cross_api_grants_truncated();
