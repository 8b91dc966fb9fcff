-- Billing reads the tenant directory through a view too, like every other domain's data (security invoker: the
-- directory's own policy applies). Departments and communes are the kernel's reference tables, read as they are.
CREATE VIEW billing_tenants_v WITH (security_invoker = true) AS
    SELECT id AS tenant_id, department_id, kind, name FROM tenants;
GRANT SELECT ON billing_tenants_v TO :app_role, :department_role;
