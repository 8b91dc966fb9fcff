-- Sign-in without the department role: the API reads an account's memberships and resolves a session into its
-- principal (role, home tenant, scope) only through these SECURITY DEFINER functions. They belong to :signin_role,
-- which cannot log in and may only SELECT the columns granted below (BYPASSRLS: memberships, tenants and forces are
-- tenant or department rows, and sign-in precedes any scope). Each function runs with a fixed search_path and names
-- every object with its schema, so no caller can put its own objects in their way. Only the runtime role may call them.

GRANT USAGE ON SCHEMA public TO :signin_role;
GRANT SELECT (id, tenant_id, user_id, role, force_id, created_at) ON public.memberships TO :signin_role;
GRANT SELECT (id, department_id, kind, insee_code, subscription_status, live_supervision) ON public.tenants
    TO :signin_role;
GRANT SELECT (id, department_id, kind, tenant_id) ON public.forces TO :signin_role;
GRANT SELECT (force_id, insee_code) ON public.force_communes TO :signin_role;
GRANT SELECT (id, user_id, membership_id, expires_at, revoked_at) ON public.auth_sessions TO :signin_role;
GRANT SELECT (id, status, display_name, habilitation_expires_on) ON public.users TO :signin_role;

-- Every membership of an account, oldest first, with its tenant's department: the sign-in picks one.
CREATE FUNCTION public.signin_memberships(p_user_id uuid)
RETURNS TABLE (id uuid, tenant_id uuid, user_id uuid, role text, force_id uuid, department_id uuid)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
        SELECT m.id, m.tenant_id, m.user_id, m.role, m.force_id, t.department_id
        FROM public.memberships m JOIN public.tenants t ON t.id = m.tenant_id
        WHERE m.user_id = p_user_id
        ORDER BY m.created_at;
END
$$;

-- One membership (a second factor, a refresh or an authorization code names the one chosen at sign-in).
CREATE FUNCTION public.signin_membership(p_membership_id uuid)
RETURNS TABLE (id uuid, tenant_id uuid, user_id uuid, role text, force_id uuid, department_id uuid)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
        SELECT m.id, m.tenant_id, m.user_id, m.role, m.force_id, t.department_id
        FROM public.memberships m JOIN public.tenants t ON t.id = m.tenant_id
        WHERE m.id = p_membership_id;
END
$$;

-- A session with its account and membership (NULL once withdrawn) and the tenants its scope draws on, in one call:
-- the API resolves a token's session in a single round trip. Which list applies is the role's decision, taken by
-- the caller (identity.rules.scope_of): `department_tenant_ids`, for a membership without a force, are the
-- department's own tenant and the tenants subscribed to live supervision; `force_tenant_ids`, for an officer's, are
-- the tenants the force is competent for: its own commune for a police municipale (décret 2022-1152); for a state
-- force or the SDIS, the subscribed communes it covers and the department's own tenant, whose sites stand in those
-- communes. What an officer reads inside that scope is narrowed further to what was dispatched to their force.
CREATE FUNCTION public.signin_session(p_session_id uuid)
RETURNS TABLE (session_id uuid, user_id uuid, expires_at timestamptz, revoked_at timestamptz, status text,
               display_name text, habilitation_expires_on date, membership_id uuid, tenant_id uuid, role text,
               force_id uuid, department_id uuid, department_tenant_ids uuid[], force_tenant_ids uuid[])
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
               END
        FROM public.auth_sessions s
        JOIN public.users u ON u.id = s.user_id
        LEFT JOIN public.memberships m ON m.id = s.membership_id
        LEFT JOIN public.tenants t ON t.id = m.tenant_id
        WHERE s.id = p_session_id;
END
$$;

-- Hand the functions to the sign-in role. The new owner needs CREATE on the schema for the change only.
GRANT CREATE ON SCHEMA public TO :signin_role;
ALTER FUNCTION public.signin_memberships(uuid) OWNER TO :signin_role;
ALTER FUNCTION public.signin_membership(uuid) OWNER TO :signin_role;
ALTER FUNCTION public.signin_session(uuid) OWNER TO :signin_role;
REVOKE CREATE ON SCHEMA public FROM :signin_role;

REVOKE ALL ON FUNCTION public.signin_memberships(uuid), public.signin_membership(uuid), public.signin_session(uuid)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.signin_memberships(uuid), public.signin_membership(uuid), public.signin_session(uuid)
    TO :app_role;
