-- Recording (dvr): segment index, recording gaps, recording health, recorder leases, retention policies and the
-- destruction register (CSI R252: the register of recordings made and of their destruction date).

CREATE TABLE recording_segments (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants (id),
    camera_id    uuid NOT NULL,
    start_at     timestamptz NOT NULL,
    end_at       timestamptz NOT NULL,
    size_bytes   bigint NOT NULL CHECK (size_bytes > 0),
    sha256       text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    object_key   text NOT NULL,
    version_id   text,
    codec        text,
    recorder_id  text NOT NULL,
    uploaded_at  timestamptz NOT NULL DEFAULT now(),
    -- No cascade: a camera with recordings cannot vanish; its recordings are destroyed (and registered) first.
    FOREIGN KEY (tenant_id, camera_id) REFERENCES cameras (tenant_id, id),
    -- The idempotency key of an upload: one segment per camera and start instant.
    UNIQUE (tenant_id, camera_id, start_at),
    CHECK (end_at > start_at)
);
CREATE INDEX recording_segments_camera_end ON recording_segments (tenant_id, camera_id, end_at);
CREATE INDEX recording_segments_end ON recording_segments (end_at);

CREATE TABLE recording_gaps (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    camera_id   uuid NOT NULL,
    start_at    timestamptz NOT NULL,
    end_at      timestamptz NOT NULL,
    cause       text NOT NULL CHECK (cause IN ('camera_unreachable', 'stream_stalled', 'recorder_failover',
                                               'spool_full', 'codec_changed', 'recorder_stopped')),
    detail      text,
    detected_at timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, camera_id) REFERENCES cameras (tenant_id, id),
    UNIQUE (tenant_id, camera_id, start_at),
    CHECK (end_at > start_at)
);
CREATE INDEX recording_gaps_camera ON recording_gaps (tenant_id, camera_id, end_at);

-- What the recorder knows of each camera right now (the "camera offline" health signal).
CREATE TABLE recording_health (
    tenant_id        uuid NOT NULL REFERENCES tenants (id),
    camera_id        uuid PRIMARY KEY,
    state            text NOT NULL CHECK (state IN ('starting', 'recording', 'offline')),
    since            timestamptz NOT NULL,
    last_segment_end timestamptz,
    codec            text,
    recorder_id      text,
    detail           text,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, camera_id) REFERENCES cameras (tenant_id, id) ON DELETE CASCADE
);

-- Recorder processes alive (no tenant data) and the camera each one records, under a lease with an expiry.
CREATE TABLE recorder_instances (
    id           text PRIMARY KEY,
    host         text NOT NULL,
    pid          integer NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE recorder_leases (
    camera_id   uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    holder      text NOT NULL,
    acquired_at timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    FOREIGN KEY (tenant_id, camera_id) REFERENCES cameras (tenant_id, id) ON DELETE CASCADE
);

-- Retention per content tier, within the legal cap of one month (CSI L252-5).
CREATE TABLE retention_policies (
    tenant_id  uuid NOT NULL REFERENCES tenants (id),
    tier       text NOT NULL CHECK (tier IN ('continuous', 'event')),
    days       integer NOT NULL CHECK (days BETWEEN 1 AND 30),
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by uuid,
    PRIMARY KEY (tenant_id, tier)
);

-- One row per destroyed recording: what it was (camera, interval, hash, object version), when and how it went.
CREATE TABLE destruction_register (
    id             uuid PRIMARY KEY,
    tenant_id      uuid NOT NULL REFERENCES tenants (id),
    camera_id      uuid NOT NULL,
    recording_type text NOT NULL CHECK (recording_type IN ('segment', 'clip')),
    recording_id   uuid NOT NULL UNIQUE,
    start_at       timestamptz NOT NULL,
    end_at         timestamptz NOT NULL,
    sha256         text NOT NULL,
    size_bytes     bigint NOT NULL,
    object_key     text NOT NULL,
    version_id     text,
    retention_days integer NOT NULL CHECK (retention_days BETWEEN 1 AND 30),
    due_at         timestamptz NOT NULL,
    destroyed_at   timestamptz NOT NULL,
    method         text NOT NULL CHECK (method IN ('retention_sweeper', 'bucket_lifecycle')),
    recorded_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX destruction_register_camera ON destruction_register (tenant_id, camera_id, destroyed_at);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['recording_segments', 'recording_gaps', 'recording_health', 'recorder_leases',
                             'retention_policies', 'destruction_register'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = ANY (app_scope())) '
                       'WITH CHECK (tenant_id = ANY (app_scope()))', t);
    END LOOP;
END $$;

-- The runtime role reads recordings and sets retention; recording itself is the department role's job.
GRANT SELECT ON recording_segments, recording_gaps, recording_health, recorder_leases TO :app_role;
GRANT SELECT, INSERT, UPDATE ON retention_policies TO :app_role;
-- The destruction register is proof: nobody updates or deletes it.
GRANT SELECT ON destruction_register TO :app_role;

GRANT SELECT, INSERT, UPDATE, DELETE ON recording_segments, recording_health, recorder_leases,
    recorder_instances TO :department_role;
GRANT SELECT, INSERT ON recording_gaps, destruction_register TO :department_role;
GRANT SELECT ON retention_policies TO :department_role;
