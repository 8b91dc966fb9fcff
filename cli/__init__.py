"""The `vigie` command: migrate, seed, demo, audit verification, key rotation, commune import."""
