-- The camera networks of a department: a camera's stream URL must name an address inside one of them (issue 11), so
-- no one can point a recorder or the detector at the cloud metadata service, the platform's own services or the
-- Internet. Department admins manage them (journaled); whoever manages cameras reads them.
CREATE TABLE camera_networks (
    id            uuid PRIMARY KEY,
    department_id uuid NOT NULL REFERENCES departments (id),
    network       cidr NOT NULL,
    label         text NOT NULL CHECK (length(label) BETWEEN 1 AND 200),
    created_by    uuid,
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (department_id, network)
);

ALTER TABLE camera_networks ENABLE ROW LEVEL SECURITY;
ALTER TABLE camera_networks FORCE ROW LEVEL SECURITY;
-- Read by the department's staff (the directory) and by the tenants of the department (a commune's admin adding a
-- camera is checked against them); written by department principals only.
CREATE POLICY department_directory ON camera_networks
    USING (department_id = app_department()
           OR department_id IN (SELECT t.department_id FROM tenants t WHERE t.id = ANY (app_scope())))
    WITH CHECK (department_id = app_department());

GRANT SELECT, INSERT, DELETE ON camera_networks TO :app_role;
GRANT SELECT, INSERT ON camera_networks TO :department_role;
