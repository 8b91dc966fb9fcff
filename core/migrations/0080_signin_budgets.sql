-- Sign-in budgets that a second factor cannot be brute-forced around: the second factor's failures are counted apart
-- from the password's and reset only when the last factor succeeds; a challenge is burned after a few misses; and the
-- whole platform has a budget of failed sign-ins per minute (one row per minute).

ALTER TABLE users ADD COLUMN second_factor_failures integer NOT NULL DEFAULT 0 CHECK (second_factor_failures >= 0);
ALTER TABLE users ADD COLUMN second_factor_failed_at timestamptz;

ALTER TABLE login_challenges ADD COLUMN misses integer NOT NULL DEFAULT 0 CHECK (misses >= 0);
CREATE INDEX login_challenges_expiry ON login_challenges (expires_at);

CREATE TABLE signin_failures (
    window_start timestamptz PRIMARY KEY,
    failures     integer NOT NULL CHECK (failures >= 0)
);

GRANT SELECT, INSERT, UPDATE, DELETE ON signin_failures TO :app_role;
GRANT SELECT, INSERT, UPDATE, DELETE ON signin_failures TO :department_role;
