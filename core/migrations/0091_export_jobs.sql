-- Exports are built by a job (issue 11): the API records the request (journaled, size estimated and capped), the
-- recorders' process (python -m dvr) claims it, builds the signed package on disk and stores it; its status is read
-- through the API. Claims expire, so a job whose builder died is taken over.
CREATE TABLE evidence_export_jobs (
    id                uuid PRIMARY KEY,
    tenant_id         uuid NOT NULL REFERENCES tenants (id),
    requisition_id    uuid NOT NULL,
    requested_by      uuid NOT NULL,
    requested_by_name text NOT NULL,
    requested_by_role text NOT NULL,
    motive            text NOT NULL CHECK (length(motive) BETWEEN 1 AND 500),
    status            text NOT NULL DEFAULT 'queued'
                      CHECK (status IN ('queued', 'building', 'done', 'failed', 'refused')),
    estimated_bytes   bigint NOT NULL CHECK (estimated_bytes >= 0),
    size_cap_bytes    bigint NOT NULL CHECK (size_cap_bytes > 0),
    attempts          integer NOT NULL DEFAULT 0,
    claimed_by        text,
    claim_expires_at  timestamptz,
    export_id         uuid,
    package_sha256    text CHECK (package_sha256 ~ '^[0-9a-f]{64}$'),
    package_bytes     bigint CHECK (package_bytes > 0),
    files             integer,
    signing_key_id    text,
    error             text CHECK (length(error) <= 1000),
    requested_at      timestamptz NOT NULL DEFAULT now(),
    started_at        timestamptz,
    finished_at       timestamptz,
    FOREIGN KEY (tenant_id, requisition_id) REFERENCES requisitions (tenant_id, id),
    FOREIGN KEY (tenant_id, export_id) REFERENCES evidence_exports (tenant_id, id),
    UNIQUE (tenant_id, id),
    CHECK ((status = 'done') = (export_id IS NOT NULL))
);
CREATE INDEX evidence_export_jobs_pending ON evidence_export_jobs (requested_at) WHERE status IN ('queued', 'building');

ALTER TABLE evidence_export_jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE evidence_export_jobs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON evidence_export_jobs USING (tenant_id = ANY (app_scope()))
    WITH CHECK (tenant_id = ANY (app_scope()));

-- The API requests and reads; only the builder (a department job: it claims whichever tenant's job comes first)
-- changes a job's state.
GRANT SELECT, INSERT ON evidence_export_jobs TO :app_role;
GRANT SELECT, INSERT, UPDATE ON evidence_export_jobs TO :department_role;
