-- The finance role (0071) bills every member tenant of its department, supervised or not, so a session resolves to
-- one more list: `member_tenant_ids`, every tenant of the membership's department, beside the two of 0052 (which
-- list applies stays the caller's decision: identity.rules.scope_of picks it for finance). The function's result
-- gains a column, which CREATE OR REPLACE cannot do (a function's return type is fixed): it is dropped and created
-- again, then handed to the sign-in role and granted exactly as 0052 did. Everything else is 0052's text.

DROP FUNCTION public.signin_session(uuid);

CREATE FUNCTION public.signin_session(p_session_id uuid)
RETURNS TABLE (session_id uuid, user_id uuid, expires_at timestamptz, revoked_at timestamptz, status text,
               display_name text, habilitation_expires_on date, membership_id uuid, tenant_id uuid, role text,
               force_id uuid, department_id uuid, department_tenant_ids uuid[], force_tenant_ids uuid[],
               member_tenant_ids uuid[])
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
        SELECT s.id, s.user_id, s.expires_at, s.revoked_at, u.status, u.display_name, u.habilitation_expires_on,
               m.id, m.tenant_id, m.role, m.force_id, t.department_id,
               CASE WHEN m.id IS NOT NULL AND m.force_id IS NULL THEN ARRAY(
                   SELECT d.id FROM public.tenants d
                   WHERE d.department_id = t.department_id
                     AND (d.kind = 'department'
                          OR (d.live_supervision AND d.subscription_status IN ('trial', 'active'))))
               END,
               CASE WHEN m.force_id IS NOT NULL THEN ARRAY(
                   SELECT c.id FROM public.forces f
                   JOIN public.tenants c
                     ON (f.kind = 'police_municipale' AND c.id = f.tenant_id)
                     OR (f.kind <> 'police_municipale' AND c.department_id = f.department_id
                         AND ((c.insee_code IN (SELECT fc.insee_code FROM public.force_communes fc
                                                WHERE fc.force_id = f.id)
                               AND c.subscription_status IN ('trial', 'active'))
                              OR c.kind = 'department'))
                   WHERE f.id = m.force_id)
               END,
               CASE WHEN m.id IS NOT NULL AND m.force_id IS NULL THEN ARRAY(
                   SELECT a.id FROM public.tenants a WHERE a.department_id = t.department_id)
               END
        FROM public.auth_sessions s
        JOIN public.users u ON u.id = s.user_id
        LEFT JOIN public.memberships m ON m.id = s.membership_id
        LEFT JOIN public.tenants t ON t.id = m.tenant_id
        WHERE s.id = p_session_id;
END
$$;

-- Hand the function to the sign-in role. The new owner needs CREATE on the schema for the change only.
GRANT CREATE ON SCHEMA public TO :signin_role;
ALTER FUNCTION public.signin_session(uuid) OWNER TO :signin_role;
REVOKE CREATE ON SCHEMA public FROM :signin_role;

REVOKE ALL ON FUNCTION public.signin_session(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.signin_session(uuid) TO :app_role;
