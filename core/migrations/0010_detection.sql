-- Detection: zones and lines drawn on cameras, analytics rules gated by legal basis, fair-share plans, detector metering.

-- Points are fractions of the frame (0..1), so a zone survives a change of stream resolution.
CREATE TABLE detection_zones (
    id         uuid PRIMARY KEY,
    tenant_id  uuid NOT NULL REFERENCES tenants (id),
    camera_id  uuid NOT NULL,
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    kind       text NOT NULL CHECK (kind IN ('zone', 'line')),
    points     jsonb NOT NULL CHECK (jsonb_typeof(points) = 'array'),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, camera_id) REFERENCES cameras (tenant_id, id) ON DELETE CASCADE,
    UNIQUE (tenant_id, camera_id, name),
    UNIQUE (tenant_id, id)
);
CREATE INDEX detection_zones_camera ON detection_zones (tenant_id, camera_id);

-- There is no face-recognition or licence-plate type, and the CHECK makes sure none can be stored.
CREATE TABLE detection_rules (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants (id),
    camera_id       uuid NOT NULL,
    zone_id         uuid,
    rule_type       text NOT NULL CHECK (rule_type IN (
                        'intrusion', 'loitering', 'line_crossing', 'wrong_way', 'excessive_density', 'crowd_movement',
                        'abandoned_object', 'person_on_ground', 'camera_tamper', 'fire_start', 'weapon')),
    params          jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(params) = 'object'),
    enabled         boolean NOT NULL DEFAULT true,
    -- Why the platform switched the rule off (legal basis expired); NULL while enabled or switched off by a person.
    disabled_reason text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, camera_id) REFERENCES cameras (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, zone_id) REFERENCES detection_zones (tenant_id, id) ON DELETE CASCADE,
    UNIQUE (tenant_id, id)
);
CREATE INDEX detection_rules_camera ON detection_rules (tenant_id, camera_id);

-- The detection plan of a tenant: its weight when the detector is saturated (weights per plan live in settings).
CREATE TABLE detection_plans (
    tenant_id  uuid PRIMARY KEY REFERENCES tenants (id),
    plan       text NOT NULL DEFAULT 'essential' CHECK (plan IN ('essential', 'standard', 'premium')),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Detector time consumed per tenant and day, for billing; written by the department-wide worker.
CREATE TABLE detector_usage (
    tenant_id        uuid NOT NULL REFERENCES tenants (id),
    day              date NOT NULL,
    detector_seconds double precision NOT NULL DEFAULT 0 CHECK (detector_seconds >= 0),
    frames           bigint NOT NULL DEFAULT 0 CHECK (frames >= 0),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, day)
);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['detection_zones', 'detection_rules', 'detection_plans', 'detector_usage'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = ANY (app_scope())) '
                       'WITH CHECK (tenant_id = ANY (app_scope()))', t);
    END LOOP;
END $$;

GRANT SELECT, INSERT, UPDATE, DELETE ON detection_zones, detection_rules TO :app_role;
GRANT SELECT, INSERT, UPDATE ON detection_plans TO :app_role;
-- Tenants read their metering; only the worker (department role) writes it.
GRANT SELECT ON detector_usage TO :app_role;

-- The department-wide detection worker reads every tenant's cameras and rules, switches off rules whose legal
-- basis lapsed, and writes metering.
GRANT SELECT ON detection_zones, detection_rules, detection_plans TO :department_role;
GRANT UPDATE (enabled, disabled_reason, updated_at) ON detection_rules TO :department_role;
GRANT SELECT, INSERT, UPDATE ON detector_usage TO :department_role;
