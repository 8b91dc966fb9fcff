-- The access journal is kept three years (the CSI's sister regimes, "dans des conditions permettant d'en garantir
-- l'intégrité"), then removed (issue 15). Removal is a cut at the start of a tenant's chain: every line older than
-- three years up to a position, never a line in the middle. Each cut is recorded here, with what it removed (the
-- positions, how many, a digest of their hashes) and the link the first kept line makes to the last removed one: the
-- verifier walks the chain from there, and the cut is signed into the next journal anchor before it commits.
CREATE TABLE journal_cuts (
    id                  uuid PRIMARY KEY,
    tenant_id           uuid NOT NULL REFERENCES tenants (id),
    cut_at              timestamptz NOT NULL DEFAULT now(),
    -- Lines that occurred before this instant were due (cut_at less three years).
    cutoff              timestamptz NOT NULL,
    first_removed       bigint NOT NULL CHECK (first_removed >= 1),
    last_removed        bigint NOT NULL,
    removed_count       bigint NOT NULL CHECK (removed_count >= 1),
    -- The hash of the last removed line: the first kept line's prev_hash, where verification resumes.
    last_removed_hash   bytea NOT NULL CHECK (length(last_removed_hash) = 32),
    -- SHA-256 over the removed lines' hashes in position order: what was removed, provably, without keeping it.
    removed_digest      bytea NOT NULL CHECK (length(removed_digest) = 32),
    oldest_removed_at   timestamptz NOT NULL,
    newest_removed_at   timestamptz NOT NULL,
    CHECK (last_removed >= first_removed AND removed_count = last_removed - first_removed + 1),
    CHECK (newest_removed_at < cutoff AND cutoff <= cut_at - interval '3 years'),
    UNIQUE (tenant_id, last_removed)
);
CREATE INDEX journal_cuts_tenant ON journal_cuts (tenant_id, last_removed DESC);

ALTER TABLE journal_cuts ENABLE ROW LEVEL SECURITY;
ALTER TABLE journal_cuts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON journal_cuts USING (tenant_id = ANY (app_scope()))
    WITH CHECK (tenant_id = ANY (app_scope()));

-- The runtime role reads the record of cuts (tenant admins and auditors); only the department job writes one, and
-- nobody rewrites or removes it.
GRANT SELECT ON journal_cuts TO :app_role;
GRANT SELECT, INSERT ON journal_cuts TO :department_role;
REVOKE UPDATE ON journal_cuts FROM :department_role;

-- The department job may now delete journal lines, but only lines older than three years, at the start of the
-- chain, covered by a cut recorded first in the same transaction. The runtime role still cannot delete any.
CREATE FUNCTION journal_line_removable() RETURNS trigger LANGUAGE plpgsql SET search_path = public, pg_catalog AS $$
BEGIN
    IF OLD.occurred_at >= now() - interval '3 years' THEN
        RAISE EXCEPTION 'journal line % of tenant % is not three years old', OLD.position, OLD.tenant_id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM journal_cuts c WHERE c.tenant_id = OLD.tenant_id
                      AND OLD.position BETWEEN c.first_removed AND c.last_removed) THEN
        RAISE EXCEPTION 'journal line % of tenant % is removed only by a recorded cut', OLD.position, OLD.tenant_id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN OLD;
END $$;

CREATE TRIGGER access_journal_removal BEFORE DELETE ON access_journal
    FOR EACH ROW EXECUTE FUNCTION journal_line_removable();
GRANT DELETE ON access_journal TO :department_role;
