-- The department's finance role: runs billing and records payments, sees no image. Held in the department's own
-- tenant (granted by a department admin only); its scope is every member tenant of the department (identity).
ALTER TABLE memberships DROP CONSTRAINT memberships_role_check;
ALTER TABLE memberships ADD CONSTRAINT memberships_role_check
    CHECK (role IN ('department_admin', 'supervisor', 'operator', 'tenant_admin', 'officer', 'auditor', 'finance'));
