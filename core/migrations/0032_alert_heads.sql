-- The newest alert of each camera and rule type, kept by the engine as it raises alerts: the dedupe decision reads
-- it by key (one index probe) instead of sorting the camera's alerts, whatever the planner believes of the alerts
-- table's statistics (stale right after a burst, when it chose to scan a tenant's every alert).
CREATE TABLE alert_heads (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    camera_id uuid NOT NULL,
    rule_type text NOT NULL,
    alert_id  uuid NOT NULL,
    PRIMARY KEY (tenant_id, camera_id, rule_type),
    FOREIGN KEY (tenant_id, alert_id) REFERENCES alerts (tenant_id, id)
);

INSERT INTO alert_heads (tenant_id, camera_id, rule_type, alert_id)
SELECT DISTINCT ON (tenant_id, camera_id, rule_type) tenant_id, camera_id, rule_type, id
  FROM alerts ORDER BY tenant_id, camera_id, rule_type, last_seen_at DESC;

ALTER TABLE alert_heads ENABLE ROW LEVEL SECURITY;
ALTER TABLE alert_heads FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON alert_heads USING (tenant_id = ANY (app_scope()))
    WITH CHECK (tenant_id = ANY (app_scope()));

GRANT SELECT, INSERT, UPDATE ON alert_heads TO :app_role, :department_role;
