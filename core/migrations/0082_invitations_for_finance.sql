-- The finance role (0071, billing) is granted like the others: through an invitation the person accepts.
ALTER TABLE invitations DROP CONSTRAINT invitations_role_check;
ALTER TABLE invitations ADD CONSTRAINT invitations_role_check
    CHECK (role IN ('department_admin', 'supervisor', 'operator', 'tenant_admin', 'officer', 'auditor', 'finance'));
