-- Detection workers share the cameras as recorders do: each live `python -m inference` process heartbeats, and
-- analyses only the cameras it holds a lease on; a dead worker's leases expire and the others take its cameras.
CREATE TABLE detector_instances (
    id           text PRIMARY KEY,
    host         text NOT NULL,
    pid          integer NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE detector_leases (
    camera_id   uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    holder      text NOT NULL,
    acquired_at timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    FOREIGN KEY (tenant_id, camera_id) REFERENCES cameras (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX detector_leases_holder ON detector_leases (holder);

ALTER TABLE detector_leases ENABLE ROW LEVEL SECURITY;
ALTER TABLE detector_leases FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON detector_leases USING (tenant_id = ANY (app_scope()))
    WITH CHECK (tenant_id = ANY (app_scope()));

-- Leasing is the department role's job (the worker serves every tenant); operators may see who analyses a camera.
GRANT SELECT ON detector_leases TO :app_role;
GRANT SELECT, INSERT, UPDATE, DELETE ON detector_leases, detector_instances TO :department_role;
