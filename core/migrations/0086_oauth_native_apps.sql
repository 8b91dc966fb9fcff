-- OAuth 2.0 for native apps (RFC 8252) with PKCE S256 (RFC 7636) and proof-of-possession (DPoP, RFC 9449): codes
-- carry how the person signed in; sessions remember the client and the key their refresh tokens are bound to.

-- A DPoP-bound client must prove possession of its key at the token endpoint; its tokens are bound to that key.
ALTER TABLE oauth_clients ADD COLUMN dpop_bound boolean NOT NULL DEFAULT false;
UPDATE oauth_clients SET dpop_bound = true WHERE client_id = 'vigie-mobile';

ALTER TABLE authorization_codes ADD COLUMN code_challenge_method text NOT NULL DEFAULT 'S256'
    CHECK (code_challenge_method = 'S256');
ALTER TABLE authorization_codes ADD COLUMN amr text[] NOT NULL DEFAULT ARRAY['pwd'];
-- The session its first redemption opened: a second redemption revokes it (RFC 6749 §4.1.2).
ALTER TABLE authorization_codes ADD COLUMN session_id uuid;
CREATE INDEX authorization_codes_expiry ON authorization_codes (expires_at);

-- RFC 7638 thumbprint (base64url SHA-256, 43 characters) of the key the session's refresh tokens are bound to.
ALTER TABLE auth_sessions ADD COLUMN dpop_jkt text CHECK (dpop_jkt ~ '^[A-Za-z0-9_-]{43}$');
ALTER TABLE auth_sessions ADD COLUMN client_id text;

GRANT DELETE ON authorization_codes TO :app_role;
GRANT DELETE ON authorization_codes TO :department_role;
