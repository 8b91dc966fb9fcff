-- The mayor's report reads what responders found (migration 0072) through its view, like everything else.
CREATE OR REPLACE VIEW report_responders_v WITH (security_invoker = true) AS
    SELECT d.tenant_id, d.id AS dispatch_id, d.alert_id, d.camera_id, d.ordered_at,
           (SELECT min(r.received_at) FROM push_receipts r WHERE r.dispatch_id = d.id AND r.status = 'on_scene')
               AS on_scene_at,
           (SELECT min(r.received_at) FROM push_receipts r WHERE r.dispatch_id = d.id AND r.status = 'closed')
               AS closed_at,
           (SELECT r.outcome FROM push_receipts r WHERE r.dispatch_id = d.id AND r.status = 'closed'
             AND r.outcome IS NOT NULL ORDER BY r.received_at LIMIT 1) AS outcome
      FROM push_dispatches d;
