-- The cross-API policies of every tenant, and the audit trail of their changes.
-- The constraints hold the contract's rules on their own, so that a direct SQL write cannot
-- break them either.

CREATE DOMAIN cross_api_id AS text
    CONSTRAINT cross_api_id_valid CHECK (VALUE ~ '^[a-z0-9][a-z0-9_-]{0,63}$');

-- One row: the revision of the whole set, bumped once by every transaction that changes it.
CREATE TABLE cross_api_revision (
    singleton boolean PRIMARY KEY DEFAULT true CONSTRAINT cross_api_one_revision CHECK (singleton),
    value bigint NOT NULL CONSTRAINT cross_api_revision_positive CHECK (value > 0),
    xact bigint
);
INSERT INTO cross_api_revision (value) VALUES (1);

CREATE TABLE cross_api_tenants (
    tenant cross_api_id PRIMARY KEY
);

CREATE TABLE cross_api_apis (
    tenant cross_api_id NOT NULL REFERENCES cross_api_tenants (tenant) ON DELETE CASCADE,
    api cross_api_id NOT NULL,
    position bigint GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (tenant, api)
);

-- A target's policy; no row reads as nothing configured. The row stays on a reset (mode
-- 'nothing') so that the target's revision keeps growing.
CREATE TABLE cross_api_policies (
    tenant cross_api_id NOT NULL,
    target cross_api_id NOT NULL,
    mode text NOT NULL
        CONSTRAINT cross_api_policy_mode CHECK (mode IN ('nothing', 'allow_all', 'list')),
    revision bigint NOT NULL CONSTRAINT cross_api_policy_revision CHECK (revision > 0),
    PRIMARY KEY (tenant, target),
    UNIQUE (tenant, target, mode),
    CONSTRAINT cross_api_policy_target FOREIGN KEY (tenant, target)
        REFERENCES cross_api_apis (tenant, api) ON DELETE CASCADE
);

-- One listed source of a target whose mode is 'list'. The tenant column is shared by the
-- target and the source, so a grant never crosses tenants; `target_mode` can only be 'list'
-- and is part of the key to the policy, so a grant cannot exist beside allow-all, and
-- allow-all cannot be turned on while a grant exists.
CREATE TABLE cross_api_grants (
    tenant cross_api_id NOT NULL,
    target cross_api_id NOT NULL,
    source cross_api_id NOT NULL,
    target_mode text NOT NULL DEFAULT 'list'
        CONSTRAINT cross_api_grant_needs_list CHECK (target_mode = 'list'),
    PRIMARY KEY (tenant, target, source),
    CONSTRAINT cross_api_no_self_grant CHECK (source <> target),
    CONSTRAINT cross_api_grant_list FOREIGN KEY (tenant, target, target_mode)
        REFERENCES cross_api_policies (tenant, target, mode) ON DELETE CASCADE,
    CONSTRAINT cross_api_grant_source FOREIGN KEY (tenant, source)
        REFERENCES cross_api_apis (tenant, api) ON DELETE CASCADE
);

-- Every accepted change. No foreign keys: the trail outlives the tenants and APIs it names.
CREATE TABLE cross_api_audit (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    revision bigint NOT NULL,
    at timestamptz NOT NULL,
    actor text NOT NULL,
    tenant text NOT NULL,
    target text NOT NULL,
    action text NOT NULL,
    before jsonb NOT NULL,
    after jsonb NOT NULL
);
CREATE INDEX cross_api_audit_by_tenant ON cross_api_audit (tenant, id);

-- Bumps the revision once per transaction and tells every replica listening on
-- 'cross_api.<schema>', whoever wrote: the library or a direct SQL statement.
CREATE FUNCTION cross_api_touch() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    next bigint;
BEGIN
    UPDATE cross_api_revision SET value = value + 1, xact = txid_current()
        WHERE xact IS DISTINCT FROM txid_current()
        RETURNING value INTO next;
    IF next IS NOT NULL THEN
        PERFORM pg_notify('cross_api.' || TG_TABLE_SCHEMA, next::text);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER cross_api_touch AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON cross_api_tenants FOR EACH STATEMENT EXECUTE FUNCTION cross_api_touch();
CREATE TRIGGER cross_api_touch AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON cross_api_apis FOR EACH STATEMENT EXECUTE FUNCTION cross_api_touch();
CREATE TRIGGER cross_api_touch AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON cross_api_policies FOR EACH STATEMENT EXECUTE FUNCTION cross_api_touch();
CREATE TRIGGER cross_api_touch AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON cross_api_grants FOR EACH STATEMENT EXECUTE FUNCTION cross_api_touch();
