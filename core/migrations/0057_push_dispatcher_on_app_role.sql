-- The push dispatcher writes through the runtime role, scoped to the tenants each piece of work names (the order's
-- tenant, the home tenants of the devices it sends to), instead of the RLS-bypassing department role. Row-level
-- security still confines every row to that scope; the department role keeps only the scans that must see every
-- tenant (due retries, the force's device directory, the outbox relay).
GRANT INSERT, UPDATE ON push_dispatches, push_deliveries TO :app_role;
GRANT INSERT ON push_orders, push_targets, push_attempts TO :app_role;
GRANT UPDATE (failed_reason) ON push_targets TO :app_role;
-- No tenant owns the channel's own alarms (our FCM credentials); they are raised and cleared by the sender.
GRANT INSERT, UPDATE ON push_health_alarms TO :app_role;
