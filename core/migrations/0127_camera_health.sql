-- Camera health (issue 15): what each watcher reports of a camera (the recorder: the main stream's connection; the
-- detector: the sub stream's picture), the combined state with every transition, and the camera's status following
-- it. States: online, offline, degraded (fps or bitrate under the camera's profile), frozen (the picture stops
-- changing), tampered (covered, blurred, turned away), unauthorised (no current prefectoral authorisation).

ALTER TABLE cameras DROP CONSTRAINT cameras_status_check;
ALTER TABLE cameras ADD CONSTRAINT cameras_status_check CHECK (status IN (
    'provisioning', 'online', 'offline', 'degraded', 'frozen', 'tampered', 'unauthorised', 'disabled'));
-- The camera's profile: what its sub stream's frame rate and its main stream's bitrate should be (degraded under).
ALTER TABLE cameras
    ADD COLUMN expected_fps          numeric(5, 2) CHECK (expected_fps > 0 AND expected_fps <= 120),
    ADD COLUMN expected_bitrate_kbps integer CHECK (expected_bitrate_kbps BETWEEN 16 AND 100000);

CREATE TABLE camera_health_signals (
    tenant_id  uuid NOT NULL REFERENCES tenants (id),
    camera_id  uuid NOT NULL,
    source     text NOT NULL CHECK (source IN ('recorder', 'detector')),
    state      text NOT NULL CHECK (state IN ('online', 'offline', 'degraded', 'frozen', 'tampered')),
    detail     text CHECK (length(detail) <= 500),
    since      timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (camera_id, source),
    FOREIGN KEY (tenant_id, camera_id) REFERENCES cameras (tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE camera_health (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    camera_id uuid PRIMARY KEY,
    state     text NOT NULL CHECK (state IN ('online', 'offline', 'degraded', 'frozen', 'tampered', 'unauthorised')),
    detail    text,
    since     timestamptz NOT NULL,
    FOREIGN KEY (tenant_id, camera_id) REFERENCES cameras (tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE camera_health_transitions (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id  uuid NOT NULL REFERENCES tenants (id),
    -- No foreign key: the history (and the availability billed from it) outlives a removed camera.
    camera_id  uuid NOT NULL,
    from_state text,
    to_state   text NOT NULL CHECK (to_state IN ('online', 'offline', 'degraded', 'frozen', 'tampered', 'unauthorised')),
    detail     text,
    at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- Set once the health watch has published the transition as a CameraHealthChanged event.
    published_at timestamptz
);
CREATE INDEX camera_health_transitions_unpublished ON camera_health_transitions (id) WHERE published_at IS NULL;
CREATE INDEX camera_health_transitions_camera ON camera_health_transitions (tenant_id, camera_id, at);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['camera_health_signals', 'camera_health', 'camera_health_transitions'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = ANY (app_scope())) '
                       'WITH CHECK (tenant_id = ANY (app_scope()))', t);
    END LOOP;
END $$;

-- One watcher's report (NULL source: re-evaluate only, e.g. after an authorisation's end), combined by precedence:
-- unauthorised, then offline, tampered, frozen, degraded, online. Returns the transition when the state changed.
CREATE FUNCTION camera_health_report(p_tenant_id uuid, p_camera_id uuid, p_source text, p_state text, p_detail text)
    RETURNS TABLE (from_state text, to_state text, detail text)
    LANGUAGE plpgsql SET search_path = public, pg_catalog AS $$
DECLARE
    v_old text;
    v_new text;
    v_detail text;
BEGIN
    IF p_source IS NOT NULL THEN
        INSERT INTO camera_health_signals (tenant_id, camera_id, source, state, detail)
            VALUES (p_tenant_id, p_camera_id, p_source, p_state, left(p_detail, 500))
            ON CONFLICT (camera_id, source) DO UPDATE SET
                state = EXCLUDED.state, detail = EXCLUDED.detail, updated_at = now(),
                since = CASE WHEN camera_health_signals.state = EXCLUDED.state THEN camera_health_signals.since
                             ELSE now() END;
    END IF;
    SELECT h.state INTO v_old FROM camera_health h WHERE h.camera_id = p_camera_id FOR UPDATE;
    IF NOT camera_authorised(p_tenant_id, p_camera_id, paris_today()) THEN
        v_new := 'unauthorised';
        v_detail := 'aucune autorisation préfectorale en cours';
    ELSE
        SELECT s.state, s.detail INTO v_new, v_detail FROM camera_health_signals s
         WHERE s.camera_id = p_camera_id AND s.tenant_id = p_tenant_id
         ORDER BY array_position(ARRAY['offline', 'tampered', 'frozen', 'degraded', 'online'], s.state)
         LIMIT 1;
        IF v_new IS NULL THEN
            RETURN;  -- nobody watches it yet: no health to state
        END IF;
    END IF;
    IF v_old IS NOT DISTINCT FROM v_new THEN
        UPDATE camera_health h SET detail = v_detail WHERE h.camera_id = p_camera_id;
        RETURN;
    END IF;
    INSERT INTO camera_health (tenant_id, camera_id, state, detail, since)
        VALUES (p_tenant_id, p_camera_id, v_new, v_detail, clock_timestamp())
        ON CONFLICT (camera_id) DO UPDATE SET state = EXCLUDED.state, detail = EXCLUDED.detail,
                                              since = EXCLUDED.since;
    INSERT INTO camera_health_transitions (tenant_id, camera_id, from_state, to_state, detail)
        VALUES (p_tenant_id, p_camera_id, v_old, v_new, v_detail);
    -- The camera's status follows its health (an administrator's 'disabled' stays).
    UPDATE cameras c SET status = v_new, updated_at = now()
     WHERE c.id = p_camera_id AND c.tenant_id = p_tenant_id AND c.status <> 'disabled';
    RETURN QUERY SELECT v_old, v_new, v_detail;
END $$;

-- Availability per camera and Paris day, from the transitions: the share of the day observed in a state where the
-- camera records a usable picture (online or degraded). Read by the billing SLA and the console.
CREATE VIEW camera_availability_v WITH (security_invoker = true) AS
WITH spans AS (
    SELECT tenant_id, camera_id, to_state AS state, at AS start_at,
           coalesce(lead(at) OVER (PARTITION BY camera_id ORDER BY at, id), now()) AS end_at
      FROM camera_health_transitions
), days AS (
    SELECT s.tenant_id, s.camera_id, s.state, d.day,
           greatest(s.start_at, (d.day::timestamp AT TIME ZONE 'Europe/Paris')) AS start_at,
           least(s.end_at, ((d.day + 1)::timestamp AT TIME ZONE 'Europe/Paris')) AS end_at
      FROM spans s
     CROSS JOIN LATERAL generate_series((s.start_at AT TIME ZONE 'Europe/Paris')::date,
                                        (s.end_at AT TIME ZONE 'Europe/Paris')::date, interval '1 day') AS g(d0)
     CROSS JOIN LATERAL (SELECT g.d0::date AS day) d
)
SELECT tenant_id, camera_id, day,
       sum(extract(epoch FROM end_at - start_at))::double precision AS observed_s,
       sum(CASE WHEN state IN ('online', 'degraded') THEN extract(epoch FROM end_at - start_at) ELSE 0 END)
           ::double precision AS available_s,
       CASE WHEN sum(extract(epoch FROM end_at - start_at)) > 0 THEN
           (sum(CASE WHEN state IN ('online', 'degraded') THEN extract(epoch FROM end_at - start_at) ELSE 0 END)
            / sum(extract(epoch FROM end_at - start_at)))::double precision END AS availability
  FROM days WHERE end_at > start_at
 GROUP BY tenant_id, camera_id, day;

GRANT SELECT ON camera_health_signals, camera_health, camera_health_transitions, camera_availability_v TO :app_role;
GRANT SELECT, INSERT, UPDATE ON camera_health_signals, camera_health TO :department_role;
GRANT SELECT, INSERT ON camera_health_transitions TO :department_role;
GRANT UPDATE (published_at) ON camera_health_transitions TO :department_role;
GRANT SELECT ON camera_availability_v TO :department_role;
GRANT EXECUTE ON FUNCTION camera_health_report(uuid, uuid, text, text, text) TO :department_role;
