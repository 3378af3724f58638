-- Audit mode per target (`"enforce": false` in a policy document). A target in audit mode
-- keeps its row even when nothing is configured, so that the mode outlives a reset.
ALTER TABLE cross_api_policies
    ADD COLUMN enforce boolean NOT NULL DEFAULT true;
