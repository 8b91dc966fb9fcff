-- Federated sign-in (OIDC relying party): identities are linked to local accounts by (issuer, subject), recorded by
-- a department admin, never matched by e-mail; each department decides whether its identity provider's own second
-- factor (the ID token's `amr`) stands in for the local one; sign-ins in flight are bound to the browser that
-- started them and pruned when abandoned.

CREATE TABLE external_identities (
    id         uuid PRIMARY KEY,
    issuer     text NOT NULL CHECK (length(issuer) BETWEEN 1 AND 500),
    subject    text NOT NULL CHECK (length(subject) BETWEEN 1 AND 255),
    user_id    uuid NOT NULL REFERENCES users (id),
    linked_by  uuid NOT NULL REFERENCES users (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    -- One local account per external identity: the IdP's subject is stable and unique within its issuer.
    UNIQUE (issuer, subject)
);
CREATE INDEX external_identities_user ON external_identities (user_id);

-- Off by default: the IdP's `amr` is a claim about its own checks, which the department must choose to rely on.
ALTER TABLE departments ADD COLUMN oidc_trust_idp_mfa boolean NOT NULL DEFAULT false;

-- The SHA-256 of the random value kept in the starting browser's cookie; the callback must present the cookie.
ALTER TABLE oidc_flows ADD COLUMN browser_hash bytea;
CREATE INDEX oidc_flows_expiry ON oidc_flows (expires_at);

GRANT SELECT, INSERT, DELETE ON external_identities TO :app_role;
GRANT DELETE ON oidc_flows TO :app_role;
-- The department row has no tenant: the service names the caller's own department in the statement.
GRANT UPDATE (oidc_trust_idp_mfa) ON departments TO :app_role;
GRANT SELECT, INSERT, UPDATE, DELETE ON external_identities TO :department_role;
