-- Maintenance tickets (issue 15): a camera out of order (offline, frozen, tampered, degraded) for longer than the
-- threshold opens one ticket, e-mailed to the tenant's maintainer contact and to the department, and shown in the
-- console: open, acknowledged, resolved, with the time to repair. Every tenant is covered, recording-only communes
-- (no live supervision) included: for them the ticket is the only way an outage reaches anyone.

ALTER TABLE tenants ADD COLUMN maintainer_email text
    CHECK (length(maintainer_email) BETWEEN 3 AND 254 AND maintainer_email LIKE '%_@_%');
ALTER TABLE departments ADD COLUMN maintenance_email text
    CHECK (length(maintenance_email) BETWEEN 3 AND 254 AND maintenance_email LIKE '%_@_%');

CREATE TABLE maintenance_tickets (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants (id),
    camera_id        uuid NOT NULL,
    state            text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'acknowledged', 'resolved')),
    -- The health state that opened it, and since when the camera was out of order.
    health_state     text NOT NULL CHECK (health_state IN ('offline', 'degraded', 'frozen', 'tampered')),
    detail           text CHECK (length(detail) <= 500),
    outage_since     timestamptz NOT NULL,
    opened_at        timestamptz NOT NULL DEFAULT now(),
    -- When the camera's health came back online (the repair, as the watchers saw it).
    restored_at      timestamptz,
    notified_to      text[] NOT NULL DEFAULT '{}',
    notified_at      timestamptz,
    notify_error     text CHECK (length(notify_error) <= 500),
    acknowledged_at  timestamptz,
    acknowledged_by  uuid,
    resolved_at      timestamptz,
    resolved_by      uuid,
    resolution_note  text CHECK (length(resolution_note) BETWEEN 1 AND 1000),
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, camera_id) REFERENCES cameras (tenant_id, id) ON DELETE CASCADE,
    CHECK ((state = 'open' AND acknowledged_at IS NULL AND resolved_at IS NULL)
           OR (state = 'acknowledged' AND acknowledged_at IS NOT NULL AND resolved_at IS NULL)
           OR (state = 'resolved' AND resolved_at IS NOT NULL)),
    CHECK (restored_at IS NULL OR restored_at >= outage_since)
);
-- One ticket per camera until it is resolved.
CREATE UNIQUE INDEX maintenance_tickets_one_unresolved ON maintenance_tickets (camera_id) WHERE state <> 'resolved';
CREATE INDEX maintenance_tickets_tenant ON maintenance_tickets (tenant_id, opened_at DESC);

ALTER TABLE maintenance_tickets ENABLE ROW LEVEL SECURITY;
ALTER TABLE maintenance_tickets FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON maintenance_tickets USING (tenant_id = ANY (app_scope()))
    WITH CHECK (tenant_id = ANY (app_scope()));

-- The console acknowledges and resolves (runtime role, its scope); the health watch opens, notifies and notes the
-- restoration (department role).
GRANT SELECT ON maintenance_tickets TO :app_role;
GRANT UPDATE (state, acknowledged_at, acknowledged_by, resolved_at, resolved_by, resolution_note)
    ON maintenance_tickets TO :app_role;
GRANT SELECT, INSERT ON maintenance_tickets TO :department_role;
GRANT UPDATE (restored_at, notified_to, notified_at, notify_error) ON maintenance_tickets TO :department_role;
GRANT SELECT ON camera_health TO :department_role;
