-- People own their credentials. An administrator invites a person to a role in a tenant (an invitation, a tenant
-- row) or forces an account's re-enrolment; either way the person receives a single-use, expiring enrolment link
-- (stored hashed, an identity row like a sign-in challenge) where they set their own password and second factor.
-- The administrator never sees a secret. An invitation names an e-mail, not an account: whether an account with that
-- e-mail exists elsewhere is decided only when the link is used, so the invitation reveals nothing about it.

CREATE TABLE invitations (
    id                      uuid PRIMARY KEY,
    tenant_id               uuid NOT NULL REFERENCES tenants (id),
    email                   text NOT NULL CHECK (email ~ '^[^@\s]+@[^@\s]+$' AND length(email) <= 254),
    display_name            text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 200),
    role                    text NOT NULL CHECK (role IN ('department_admin', 'supervisor', 'operator',
                                                          'tenant_admin', 'officer', 'auditor')),
    force_id                uuid REFERENCES forces (id),
    -- The habilitation (agrément) the administrator records for a role that views images; written to the account
    -- when the person accepts.
    agrement_number         text CHECK (length(agrement_number) BETWEEN 1 AND 100),
    enquiry_date            date,
    habilitation_expires_on date,
    training_date           date,
    invited_by              uuid NOT NULL REFERENCES users (id),
    created_at              timestamptz NOT NULL DEFAULT now(),
    expires_at              timestamptz NOT NULL,
    accepted_at             timestamptz,
    accepted_by             uuid REFERENCES users (id),
    revoked_at              timestamptz,
    CHECK ((role = 'officer') = (force_id IS NOT NULL)),
    CHECK ((accepted_at IS NULL) = (accepted_by IS NULL))
);
CREATE INDEX invitations_tenant ON invitations (tenant_id, id);
ALTER TABLE invitations ENABLE ROW LEVEL SECURITY;
ALTER TABLE invitations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON invitations USING (tenant_id = ANY (app_scope()))
    WITH CHECK (tenant_id = ANY (app_scope()));

CREATE TABLE enrolments (
    id                  uuid PRIMARY KEY,
    token_hash          bytea NOT NULL UNIQUE,
    purpose             text NOT NULL CHECK (purpose IN ('invitation', 'reenrolment')),
    invitation_id       uuid REFERENCES invitations (id),
    -- The account being re-enrolled; an invitation's account is found by e-mail when the link is used.
    user_id             uuid REFERENCES users (id),
    email               text NOT NULL,
    issued_by           uuid NOT NULL REFERENCES users (id),
    -- The second-factor seed offered on the latest view of the link (sealed); enrolled only with a code proving it.
    offered_totp_sealed bytea,
    misses              integer NOT NULL DEFAULT 0 CHECK (misses >= 0),
    created_at          timestamptz NOT NULL DEFAULT now(),
    expires_at          timestamptz NOT NULL,
    used_at             timestamptz,
    revoked_at          timestamptz,
    CHECK ((purpose = 'invitation') = (invitation_id IS NOT NULL)),
    CHECK ((purpose = 'reenrolment') = (user_id IS NOT NULL))
);
CREATE INDEX enrolments_user ON enrolments (user_id) WHERE user_id IS NOT NULL;
CREATE INDEX enrolments_invitation ON enrolments (invitation_id) WHERE invitation_id IS NOT NULL;

GRANT SELECT, INSERT, UPDATE ON invitations, enrolments TO :app_role;
GRANT SELECT, INSERT, UPDATE ON invitations, enrolments TO :department_role;

-- The person holding an invitation's link has no scope yet: what the invitation offers (which tenant, which role) is
-- read through this sign-in function, like a membership at sign-in; accepting it then works inside that tenant.
GRANT SELECT (id, tenant_id, display_name, role, force_id, expires_at, accepted_at, revoked_at) ON public.invitations
    TO :signin_role;
GRANT SELECT (name) ON public.tenants TO :signin_role;

CREATE FUNCTION public.signin_invitation(p_invitation_id uuid)
RETURNS TABLE (id uuid, tenant_id uuid, department_id uuid, tenant_name text, display_name text, role text,
               force_id uuid, expires_at timestamptz, accepted_at timestamptz, revoked_at timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
        SELECT i.id, i.tenant_id, t.department_id, t.name, i.display_name, i.role, i.force_id, i.expires_at,
               i.accepted_at, i.revoked_at
        FROM public.invitations i JOIN public.tenants t ON t.id = i.tenant_id
        WHERE i.id = p_invitation_id;
END
$$;

GRANT CREATE ON SCHEMA public TO :signin_role;
ALTER FUNCTION public.signin_invitation(uuid) OWNER TO :signin_role;
REVOKE CREATE ON SCHEMA public FROM :signin_role;
REVOKE ALL ON FUNCTION public.signin_invitation(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.signin_invitation(uuid) TO :app_role;
