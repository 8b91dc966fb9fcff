"""Identity: local accounts, signed access tokens, refresh sessions, second factor, throttling, OIDC federation."""
