-- Authorization code + PKCE (RFC 6749 §4.1, RFC 7636) for first-party public clients: the officers' phone app.

CREATE TABLE oauth_clients (
    client_id     text PRIMARY KEY CHECK (client_id ~ '^[a-z0-9][a-z0-9._-]{2,63}$'),
    name          text NOT NULL,
    -- Exact matches only, except loopback URIs whose port may vary (RFC 8252 §7.3).
    redirect_uris text[] NOT NULL CHECK (cardinality(redirect_uris) > 0),
    created_at    timestamptz NOT NULL DEFAULT now()
);

INSERT INTO oauth_clients (client_id, name, redirect_uris) VALUES
    ('vigie-mobile', 'Vigie — application des forces', ARRAY['fr.vigie.mobile:/oauth2redirect',
                                                            'http://127.0.0.1/oauth2redirect']);

-- One-use codes, stored hashed; bound to the client, the redirect URI and the S256 challenge.
CREATE TABLE authorization_codes (
    code_hash      bytea PRIMARY KEY,
    client_id      text NOT NULL REFERENCES oauth_clients (client_id),
    redirect_uri   text NOT NULL,
    code_challenge text NOT NULL CHECK (code_challenge ~ '^[A-Za-z0-9_-]{43}$'),
    user_id        uuid NOT NULL REFERENCES users (id),
    membership_id  uuid NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    used_at        timestamptz
);

GRANT SELECT ON oauth_clients TO :app_role;
GRANT SELECT, INSERT, UPDATE ON authorization_codes TO :app_role;
GRANT SELECT, INSERT, UPDATE ON oauth_clients, authorization_codes TO :department_role;
