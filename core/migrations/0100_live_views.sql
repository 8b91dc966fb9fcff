-- Live video (issue 13): each viewing of a camera's live stream. The API writes the row when it issues the viewing's
-- ticket, in the same transaction as the `media.live` journal line (who, camera, start, motive), whose target_id is
-- this row's id; the live gateway marks it started when the ticket is redeemed (once: a ticket is single-use), alive
-- while it lasts, and ended when the socket closes. Tenant admins and auditors read it through the API.
CREATE TABLE live_views (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants (id),
    -- No foreign key to cameras: the record of who watched outlives a removed camera, as the journal does.
    camera_id    uuid NOT NULL,
    user_id      uuid NOT NULL REFERENCES users (id),
    session_id   uuid NOT NULL,
    stream       text NOT NULL CHECK (stream IN ('main', 'sub')),
    motive       text NOT NULL CHECK (length(motive) BETWEEN 1 AND 500),
    issued_at    timestamptz NOT NULL DEFAULT now(),
    -- The ticket must be redeemed before this (it is a bearer credential: a minute at most).
    expires_at   timestamptz NOT NULL,
    started_at   timestamptz,
    ended_at     timestamptz,
    end_reason   text CHECK (length(end_reason) <= 200),
    -- Refreshed by the gateway while the viewing lasts: it bounds the end of a viewing whose gateway died.
    last_seen_at timestamptz,
    gateway_id   text CHECK (length(gateway_id) <= 200),
    UNIQUE (tenant_id, id),
    CHECK (expires_at > issued_at AND expires_at <= issued_at + interval '60 seconds'),
    CHECK (ended_at IS NULL OR (started_at IS NOT NULL AND ended_at >= started_at))
);
CREATE INDEX live_views_camera ON live_views (tenant_id, camera_id, id DESC);

ALTER TABLE live_views ENABLE ROW LEVEL SECURITY;
ALTER TABLE live_views FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON live_views USING (tenant_id = ANY (app_scope()))
    WITH CHECK (tenant_id = ANY (app_scope()));

-- The runtime role (API and gateway) inserts and reads; it may change only what the gateway records, never who
-- watched, which camera, or why. No DELETE: the record is kept with the journal.
GRANT SELECT, INSERT ON live_views TO :app_role;
GRANT UPDATE (started_at, ended_at, end_reason, last_seen_at, gateway_id) ON live_views TO :app_role;
GRANT SELECT ON live_views TO :department_role;

-- A camera whose codec browsers cannot play (H.265) is transcoded to H.264 by the live gateway when this is set.
ALTER TABLE cameras ADD COLUMN live_transcode boolean NOT NULL DEFAULT false;
