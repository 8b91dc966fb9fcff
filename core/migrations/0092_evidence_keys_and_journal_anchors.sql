-- Evidence keys are provisioned, never created on demand (issue 11): `vigie evidence init-key` writes them with the
-- department role; the API only reads the public half. A second Ed25519 key signs the journal's anchors.
ALTER TABLE export_signing_keys
    ADD COLUMN purpose text NOT NULL DEFAULT 'export' CHECK (purpose IN ('export', 'journal_anchor'));
REVOKE INSERT ON export_signing_keys FROM :app_role;

-- Every anchor written: signed checkpoints of every tenant's chain head, kept in the object-locked anchor space
-- (compliance retention of at least the journal's three years). This table only schedules the job; verification
-- reads the anchors from the store, where nobody who owns the database can remove or change them.
CREATE TABLE journal_anchors (
    id             uuid PRIMARY KEY,
    anchored_at    timestamptz NOT NULL,
    object_key     text NOT NULL,
    version_id     text,
    key_id         text NOT NULL,
    chains         integer NOT NULL CHECK (chains >= 0),
    payload_sha256 text NOT NULL CHECK (payload_sha256 ~ '^[0-9a-f]{64}$'),
    retain_until   timestamptz NOT NULL
);
CREATE INDEX journal_anchors_time ON journal_anchors (anchored_at DESC);

GRANT SELECT, INSERT ON journal_anchors TO :department_role;
