-- Foundation: reference data, tenancy, forces, identity, access journal; row-level security on every tenant table.

-- The caller's tenant scope, set per transaction by core.db.tenant_transaction. NULL (nothing) when unset.
CREATE FUNCTION app_scope() RETURNS uuid[] LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT nullif(current_setting('app.tenant_ids', true), '')::uuid[] $$;

-- Set only for department-wide principals: lets them read the department's directory (tenants, forces).
CREATE FUNCTION app_department() RETURNS uuid LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT nullif(current_setting('app.department_id', true), '')::uuid $$;

CREATE TABLE departments (
    id          uuid PRIMARY KEY,
    code        text NOT NULL UNIQUE CHECK (code ~ '^([0-9]{2,3}|2A|2B)$'),
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- The official commune list (INSEE COG); extended with `vigie communes import`.
CREATE TABLE communes (
    insee_code      text PRIMARY KEY CHECK (insee_code ~ '^([0-9]{2}|2A|2B)[0-9]{3}$'),
    name            text NOT NULL,
    department_code text NOT NULL
);

CREATE TABLE tenants (
    id                      uuid PRIMARY KEY,
    department_id           uuid NOT NULL REFERENCES departments (id),
    kind                    text NOT NULL CHECK (kind IN ('department', 'commune', 'epci')),
    name                    text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    insee_code              text UNIQUE REFERENCES communes (insee_code),
    siren                   text CHECK (siren ~ '^[0-9]{9}$'),
    subscription_status     text NOT NULL DEFAULT 'active'
                            CHECK (subscription_status IN ('trial', 'active', 'suspended', 'terminated')),
    live_supervision        boolean NOT NULL DEFAULT false,
    municipal_police_opt_in boolean NOT NULL DEFAULT false,
    retention_days          integer NOT NULL DEFAULT 30 CHECK (retention_days BETWEEN 1 AND 30),
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    UNIQUE (department_id, name),
    CHECK ((kind = 'commune') = (insee_code IS NOT NULL))
);
CREATE UNIQUE INDEX tenants_one_department_tenant ON tenants (department_id) WHERE kind = 'department';

CREATE TABLE forces (
    id            uuid PRIMARY KEY,
    department_id uuid NOT NULL REFERENCES departments (id),
    kind          text NOT NULL CHECK (kind IN ('police_nationale', 'gendarmerie', 'police_municipale', 'sdis')),
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    -- The commune (tenant) that runs a police municipale; NULL for state forces and SDIS.
    tenant_id     uuid REFERENCES tenants (id),
    phone         text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (department_id, name),
    CHECK ((kind = 'police_municipale') = (tenant_id IS NOT NULL))
);

CREATE TABLE force_communes (
    force_id      uuid NOT NULL REFERENCES forces (id) ON DELETE CASCADE,
    insee_code    text NOT NULL REFERENCES communes (insee_code),
    department_id uuid NOT NULL REFERENCES departments (id),
    PRIMARY KEY (force_id, insee_code)
);

CREATE TABLE sites (
    id         uuid PRIMARY KEY,
    tenant_id  uuid NOT NULL REFERENCES tenants (id),
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    kind       text NOT NULL CHECK (kind IN ('college', 'school', 'social', 'administrative', 'public_space',
                                             'transport', 'sports', 'other')),
    address    text,
    insee_code text NOT NULL REFERENCES communes (insee_code),
    latitude   double precision CHECK (latitude BETWEEN -90 AND 90),
    longitude  double precision CHECK (longitude BETWEEN -180 AND 180),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name),
    UNIQUE (tenant_id, id)
);

CREATE TABLE cameras (
    id                 uuid PRIMARY KEY,
    tenant_id          uuid NOT NULL REFERENCES tenants (id),
    site_id            uuid NOT NULL,
    name               text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    main_stream_url    text NOT NULL CHECK (main_stream_url ~ '^rtsps?://'),
    sub_stream_url     text CHECK (sub_stream_url ~ '^rtsps?://'),
    -- username and password, sealed with the platform data key (core.crypto); never returned by the API.
    credentials_sealed bytea,
    insee_code         text NOT NULL REFERENCES communes (insee_code),
    latitude           double precision CHECK (latitude BETWEEN -90 AND 90),
    longitude          double precision CHECK (longitude BETWEEN -180 AND 180),
    status             text NOT NULL DEFAULT 'provisioning'
                       CHECK (status IN ('provisioning', 'online', 'offline', 'disabled')),
    privacy_masks      jsonb NOT NULL DEFAULT '[]'::jsonb,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, site_id) REFERENCES sites (tenant_id, id),
    UNIQUE (tenant_id, name),
    UNIQUE (tenant_id, id)
);
CREATE INDEX cameras_site ON cameras (tenant_id, site_id);

-- Prefectoral authorisation of a camera (CSI L252-1): purposes (L251-2), retention cap (L252-5), validity.
CREATE TABLE camera_authorisations (
    id                       uuid PRIMARY KEY,
    tenant_id                uuid NOT NULL REFERENCES tenants (id),
    camera_id                uuid NOT NULL,
    prefectoral_order_number text NOT NULL CHECK (length(prefectoral_order_number) BETWEEN 1 AND 100),
    purposes                 text[] NOT NULL CHECK (cardinality(purposes) > 0),
    max_retention_days       integer NOT NULL CHECK (max_retention_days BETWEEN 1 AND 30),
    min_retention_days       integer CHECK (min_retention_days >= 1),
    valid_from               date NOT NULL,
    valid_until              date NOT NULL,
    authorised_viewers       text,
    created_at               timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, camera_id) REFERENCES cameras (tenant_id, id) ON DELETE CASCADE,
    UNIQUE (tenant_id, id),
    CHECK (min_retention_days IS NULL OR min_retention_days <= max_retention_days),
    CHECK (valid_until > valid_from)
);
CREATE INDEX camera_authorisations_camera ON camera_authorisations (tenant_id, camera_id);

-- Which event types of décret 2023-828 art. 3 have a recorded legal basis on a camera, and when.
CREATE TABLE authorised_event_types (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants (id),
    authorisation_id uuid NOT NULL,
    event_type       text NOT NULL CHECK (event_type IN (
                        'abandoned_object', 'weapon', 'wrong_way', 'forbidden_zone', 'person_on_ground',
                        'crowd_movement', 'excessive_density', 'fire_start')),
    legal_basis      text NOT NULL CHECK (length(legal_basis) BETWEEN 1 AND 500),
    valid_from       date NOT NULL,
    valid_until      date NOT NULL,
    FOREIGN KEY (tenant_id, authorisation_id) REFERENCES camera_authorisations (tenant_id, id) ON DELETE CASCADE,
    UNIQUE (authorisation_id, event_type),
    CHECK (valid_until > valid_from)
);

CREATE TABLE users (
    id                      uuid PRIMARY KEY,
    department_id           uuid NOT NULL REFERENCES departments (id),
    email                   text NOT NULL CHECK (email ~ '^[^@\s]+@[^@\s]+$'),
    display_name            text NOT NULL,
    password_hash           text,
    totp_secret_sealed      bytea,
    totp_last_step          bigint,
    status                  text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    failed_attempts         integer NOT NULL DEFAULT 0,
    last_failed_at          timestamptz,
    -- Habilitation of CSU agents (CSI L132-14-1): agrément préfectoral after an administrative enquiry.
    agrement_number         text,
    enquiry_date            date,
    habilitation_expires_on date,
    training_date           date,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email ON users (lower(email));

CREATE TABLE memberships (
    id         uuid PRIMARY KEY,
    tenant_id  uuid NOT NULL REFERENCES tenants (id),
    user_id    uuid NOT NULL REFERENCES users (id),
    role       text NOT NULL CHECK (role IN ('department_admin', 'supervisor', 'operator', 'tenant_admin',
                                             'officer', 'auditor')),
    force_id   uuid REFERENCES forces (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, user_id, role),
    CHECK ((role = 'officer') = (force_id IS NOT NULL))
);
CREATE INDEX memberships_user ON memberships (user_id);

CREATE TABLE auth_sessions (
    id             uuid PRIMARY KEY,
    user_id        uuid NOT NULL REFERENCES users (id),
    membership_id  uuid NOT NULL,
    amr            text[] NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    revoked_at     timestamptz,
    revoked_reason text,
    client_ip      text,
    user_agent     text
);
CREATE INDEX auth_sessions_user ON auth_sessions (user_id);

CREATE TABLE refresh_tokens (
    id          uuid PRIMARY KEY,
    session_id  uuid NOT NULL REFERENCES auth_sessions (id),
    token_hash  bytea NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);

-- A pending sign-in waiting for its second factor.
CREATE TABLE login_challenges (
    id            uuid PRIMARY KEY,
    user_id       uuid NOT NULL REFERENCES users (id),
    membership_id uuid NOT NULL,
    token_hash    bytea NOT NULL UNIQUE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    used_at       timestamptz
);

CREATE TABLE ip_login_attempts (
    client_ip    text NOT NULL,
    window_start timestamptz NOT NULL,
    attempts     integer NOT NULL,
    PRIMARY KEY (client_ip, window_start)
);

CREATE TABLE signing_keys (
    kid                 text PRIMARY KEY,
    algorithm           text NOT NULL CHECK (algorithm IN ('ES256')),
    private_jwk_sealed  bytea NOT NULL,
    public_jwk          jsonb NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    -- Signing uses the newest key whose activation time has passed; retired keys stay published until unpublish_at.
    activates_at        timestamptz NOT NULL DEFAULT now(),
    retired_at          timestamptz,
    unpublish_at        timestamptz
);

-- OIDC sign-ins in flight (state, nonce, PKCE verifier), one use each.
CREATE TABLE oidc_flows (
    state          text PRIMARY KEY,
    nonce          text NOT NULL,
    code_verifier  text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    used_at        timestamptz
);

-- Access journal (who, when, what camera and time range, motive, recipient), append-only and hash-chained per tenant.
CREATE TABLE access_journal (
    tenant_id     uuid NOT NULL REFERENCES tenants (id),
    position      bigint NOT NULL,
    id            uuid NOT NULL UNIQUE,
    occurred_at   timestamptz NOT NULL,
    actor_user_id uuid,
    actor_role    text NOT NULL,
    action        text NOT NULL,
    target_type   text NOT NULL,
    target_id     text,
    camera_id     uuid,
    range_start   timestamptz,
    range_end     timestamptz,
    motive        text,
    recipient     text,
    details       text NOT NULL DEFAULT '{}',
    prev_hash     bytea NOT NULL,
    hash          bytea NOT NULL,
    PRIMARY KEY (tenant_id, position),
    CHECK (action NOT LIKE 'media.%' OR (motive IS NOT NULL AND length(motive) > 0))
);
CREATE INDEX access_journal_camera ON access_journal (tenant_id, camera_id, occurred_at);

CREATE TABLE journal_heads (
    tenant_id  uuid PRIMARY KEY REFERENCES tenants (id),
    position   bigint NOT NULL,
    hash       bytea NOT NULL
);

-- Row-level security: the department directory (tenants, forces) is readable department-wide;
-- every tenant-owned row is visible only inside the caller's scope. Unset scope = nothing (fail closed).
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_directory ON tenants
    USING (id = ANY (app_scope()) OR department_id = app_department())
    WITH CHECK (id = ANY (app_scope()) OR department_id = app_department());

ALTER TABLE forces ENABLE ROW LEVEL SECURITY;
ALTER TABLE forces FORCE ROW LEVEL SECURITY;
CREATE POLICY force_directory ON forces
    USING (department_id = app_department() OR tenant_id = ANY (app_scope()))
    WITH CHECK (department_id = app_department());

ALTER TABLE force_communes ENABLE ROW LEVEL SECURITY;
ALTER TABLE force_communes FORCE ROW LEVEL SECURITY;
CREATE POLICY force_commune_directory ON force_communes
    USING (department_id = app_department()) WITH CHECK (department_id = app_department());

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['sites', 'cameras', 'camera_authorisations', 'authorised_event_types',
                             'memberships', 'access_journal', 'journal_heads'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = ANY (app_scope())) '
                       'WITH CHECK (tenant_id = ANY (app_scope()))', t);
    END LOOP;
END $$;

GRANT USAGE ON SCHEMA public TO :app_role, :department_role;
GRANT EXECUTE ON FUNCTION app_scope(), app_department() TO :app_role, :department_role;
GRANT SELECT ON departments, communes TO :app_role;
GRANT SELECT, INSERT, UPDATE ON tenants, forces TO :app_role;
GRANT SELECT, INSERT, DELETE ON force_communes TO :app_role;
GRANT SELECT, INSERT, UPDATE, DELETE ON sites, cameras, camera_authorisations, authorised_event_types,
    memberships TO :app_role;
GRANT SELECT, INSERT, UPDATE ON users, auth_sessions, refresh_tokens, login_challenges, oidc_flows TO :app_role;
GRANT SELECT, INSERT, UPDATE, DELETE ON ip_login_attempts TO :app_role;
GRANT SELECT ON signing_keys TO :app_role;
-- The journal is append-only for the runtime role: no UPDATE, no DELETE.
GRANT SELECT, INSERT ON access_journal TO :app_role;
GRANT SELECT, INSERT, UPDATE ON journal_heads TO :app_role;

-- The department role: cross-tenant jobs (seed, key rotation, journal verification, retention). It has BYPASSRLS,
-- so everything it does is journaled by the caller.
GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO :department_role;
GRANT DELETE ON force_communes, memberships, ip_login_attempts TO :department_role;
REVOKE UPDATE ON access_journal FROM :department_role;
REVOKE ALL ON schema_migrations FROM :department_role;
