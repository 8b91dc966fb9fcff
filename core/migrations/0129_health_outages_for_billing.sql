-- The SLA's unavailability gains the cameras' health (issue 15), as migration 0070 planned: besides the recorder's
-- gaps, every span a camera spent offline, frozen or tampered, from its health transitions (an open span ends now).
-- A degraded camera still records and shows a picture; an unauthorised one is stopped by law, not by a fault: neither
-- counts against the service. Billing merges overlapping spans, so a gap inside an outage counts once.
CREATE OR REPLACE VIEW billing_camera_outages_v WITH (security_invoker = true) AS
    SELECT tenant_id, camera_id, start_at, end_at, 'recording_gap'::text AS source FROM recording_gaps
    UNION ALL
    SELECT tenant_id, camera_id, start_at, end_at, 'camera_health'::text AS source
      FROM (SELECT tenant_id, camera_id, to_state, at AS start_at,
                   coalesce(lead(at) OVER (PARTITION BY camera_id ORDER BY at, id), now()) AS end_at
              FROM camera_health_transitions) spans
     WHERE to_state IN ('offline', 'frozen', 'tampered') AND end_at > start_at;
