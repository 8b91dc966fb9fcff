-- Evidence (dvr): event clips, judicial requisitions with their legal holds, signed exports and their
-- transmission to the prosecutor. Requisitions, holds, releases, exports and transmissions are append-only.

CREATE TABLE clips (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants (id),
    camera_id       uuid NOT NULL,
    alert_id        uuid,
    start_at        timestamptz NOT NULL,
    end_at          timestamptz NOT NULL,
    object_key      text NOT NULL,
    version_id      text,
    sha256          text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    size_bytes      bigint NOT NULL CHECK (size_bytes > 0),
    -- The segments the clip was cut from: object key, version and SHA-256 of each (chain of custody).
    source_segments jsonb NOT NULL,
    created_by      uuid,
    created_at      timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, camera_id) REFERENCES cameras (tenant_id, id),
    UNIQUE (tenant_id, alert_id),
    UNIQUE (tenant_id, id),
    CHECK (end_at > start_at)
);
CREATE INDEX clips_camera ON clips (tenant_id, camera_id, start_at);

CREATE TABLE requisitions (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants (id),
    procedure_number text NOT NULL CHECK (length(procedure_number) BETWEEN 1 AND 100),
    legal_frame      text NOT NULL CHECK (legal_frame IN ('flagrance', 'enquete_preliminaire',
                                                          'information_judiciaire')),
    opj_name         text NOT NULL CHECK (length(opj_name) BETWEEN 1 AND 200),
    opj_service      text NOT NULL CHECK (length(opj_service) BETWEEN 1 AND 200),
    opj_contact      text,
    camera_ids       uuid[] NOT NULL CHECK (cardinality(camera_ids) BETWEEN 1 AND 100),
    start_at         timestamptz NOT NULL,
    end_at           timestamptz NOT NULL,
    received_at      timestamptz NOT NULL,
    registered_by    uuid NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id),
    CHECK (end_at > start_at)
);

CREATE TABLE legal_holds (
    id             uuid PRIMARY KEY,
    tenant_id      uuid NOT NULL REFERENCES tenants (id),
    requisition_id uuid NOT NULL,
    camera_id      uuid NOT NULL,
    recording_type text NOT NULL CHECK (recording_type IN ('segment', 'clip')),
    recording_id   uuid NOT NULL,
    object_key     text NOT NULL,
    version_id     text,
    sha256         text NOT NULL,
    placed_at      timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, requisition_id) REFERENCES requisitions (tenant_id, id),
    UNIQUE (requisition_id, recording_id)
);
CREATE INDEX legal_holds_recording ON legal_holds (recording_id);

CREATE TABLE legal_hold_releases (
    id             uuid PRIMARY KEY,
    tenant_id      uuid NOT NULL REFERENCES tenants (id),
    requisition_id uuid NOT NULL UNIQUE,
    released_by    uuid NOT NULL,
    reason         text NOT NULL CHECK (length(reason) BETWEEN 1 AND 1000),
    released_at    timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, requisition_id) REFERENCES requisitions (tenant_id, id)
);

CREATE TABLE evidence_exports (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants (id),
    requisition_id   uuid NOT NULL,
    exported_by      uuid NOT NULL,
    exported_by_name text NOT NULL,
    object_key       text NOT NULL,
    version_id       text,
    package_sha256   text NOT NULL,
    manifest_sha256  text NOT NULL,
    signing_key_id   text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, requisition_id) REFERENCES requisitions (tenant_id, id),
    UNIQUE (tenant_id, id)
);

-- "La date de leur transmission au parquet": one row per export handed over.
CREATE TABLE export_transmissions (
    id             uuid PRIMARY KEY,
    tenant_id      uuid NOT NULL REFERENCES tenants (id),
    export_id      uuid NOT NULL UNIQUE,
    transmitted_at timestamptz NOT NULL,
    recipient      text NOT NULL CHECK (length(recipient) BETWEEN 1 AND 300),
    recorded_by    uuid NOT NULL,
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, export_id) REFERENCES evidence_exports (tenant_id, id)
);

-- The platform's Ed25519 export signing keys (department-wide, no tenant data); private halves sealed.
CREATE TABLE export_signing_keys (
    id                 text PRIMARY KEY,
    public_key         bytea NOT NULL,
    private_key_sealed bytea NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now()
);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['clips', 'requisitions', 'legal_holds', 'legal_hold_releases', 'evidence_exports',
                             'export_transmissions'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = ANY (app_scope())) '
                       'WITH CHECK (tenant_id = ANY (app_scope()))', t);
    END LOOP;
END $$;

-- Append-only registers for the runtime role: INSERT and SELECT, never UPDATE or DELETE.
GRANT SELECT, INSERT ON clips, requisitions, legal_holds, legal_hold_releases, evidence_exports,
    export_transmissions, export_signing_keys TO :app_role;
GRANT SELECT, INSERT ON clips, requisitions, legal_holds, legal_hold_releases, evidence_exports,
    export_transmissions, export_signing_keys TO :department_role;
-- The retention sweeper removes a destroyed clip from the index after registering its destruction.
GRANT DELETE ON clips TO :department_role;
