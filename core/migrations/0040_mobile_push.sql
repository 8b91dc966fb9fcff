-- Mobile push: officers' devices (tokens sealed, never served), dispatches received from alerts, one delivery per
-- device and order, every FCM attempt, receipts and responder statuses, an outbox towards NATS, health alarms.

CREATE TABLE push_devices (
    id                 uuid PRIMARY KEY,
    -- The officer's home tenant (their membership's), like their sign-in journal.
    tenant_id          uuid NOT NULL REFERENCES tenants (id),
    user_id            uuid NOT NULL REFERENCES users (id),
    force_id           uuid NOT NULL REFERENCES forces (id),
    platform           text NOT NULL CHECK (platform IN ('android', 'ios')),
    -- The FCM registration token sealed with the data key; its SHA-256 finds duplicates without opening it.
    token_sealed       bytea NOT NULL,
    token_hash         bytea NOT NULL,
    app_version        text,
    registered_at      timestamptz NOT NULL DEFAULT now(),
    token_refreshed_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at       timestamptz NOT NULL DEFAULT now(),
    removed_at         timestamptz,
    removed_reason     text,
    UNIQUE (tenant_id, id)
);
-- One live registration per token across the whole platform (a phone changing hands re-registers).
CREATE UNIQUE INDEX push_devices_live_token ON push_devices (token_hash) WHERE removed_at IS NULL;
CREATE INDEX push_devices_force ON push_devices (force_id, user_id) WHERE removed_at IS NULL;

CREATE TABLE push_dispatches (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants (id),
    alert_id         uuid NOT NULL,
    camera_id        uuid NOT NULL,
    force_id         uuid NOT NULL REFERENCES forces (id),
    urgency          text NOT NULL CHECK (urgency IN ('routine', 'urgent', 'immediate')),
    ttl_s            integer NOT NULL CHECK (ttl_s BETWEEN 0 AND 2419200),
    escalation_level integer NOT NULL DEFAULT 0,
    ordered_at       timestamptz NOT NULL,
    expires_at       timestamptz NOT NULL,
    received_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id)
);
CREATE INDEX push_dispatches_alert ON push_dispatches (tenant_id, alert_id);

-- Every DispatchOrdered consumed, by event id: JetStream redelivers, this makes the consumer idempotent.
CREATE TABLE push_orders (
    event_id         uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants (id),
    dispatch_id      uuid NOT NULL REFERENCES push_dispatches (id),
    escalation_level integer NOT NULL,
    officer_ids      uuid[] NOT NULL,
    received_at      timestamptz NOT NULL DEFAULT now()
);

-- The officers a dispatch went to, and where each of them stands.
CREATE TABLE push_targets (
    tenant_id        uuid NOT NULL REFERENCES tenants (id),
    dispatch_id      uuid NOT NULL REFERENCES push_dispatches (id),
    user_id          uuid NOT NULL REFERENCES users (id),
    status           text CHECK (status IN ('delivered', 'acknowledged', 'en_route', 'on_scene', 'closed')),
    status_at        timestamptz,
    status_device_id uuid,
    failed_reason    text,
    PRIMARY KEY (dispatch_id, user_id)
);

CREATE TABLE push_deliveries (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants (id),
    dispatch_id     uuid NOT NULL REFERENCES push_dispatches (id),
    order_event_id  uuid NOT NULL REFERENCES push_orders (event_id),
    device_id       uuid NOT NULL REFERENCES push_devices (id),
    user_id         uuid NOT NULL REFERENCES users (id),
    state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'accepted', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    message_name    text,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (order_event_id, device_id)
);
CREATE INDEX push_deliveries_due ON push_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX push_deliveries_dispatch ON push_deliveries (dispatch_id, user_id);

-- Every HTTP attempt to FCM, whatever came of it.
CREATE TABLE push_attempts (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants (id),
    delivery_id   uuid NOT NULL REFERENCES push_deliveries (id),
    attempt       integer NOT NULL,
    started_at    timestamptz NOT NULL,
    duration_ms   double precision NOT NULL,
    outcome       text NOT NULL,
    error_code    text,
    http_status   integer,
    retry_after_s double precision,
    detail        text,
    UNIQUE (delivery_id, attempt)
);

-- Accepted receipts and statuses (refused ones are journaled only): one of each status per officer and dispatch.
CREATE TABLE push_receipts (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    dispatch_id uuid NOT NULL REFERENCES push_dispatches (id),
    user_id     uuid NOT NULL REFERENCES users (id),
    device_id   uuid,
    status      text NOT NULL CHECK (status IN ('delivered', 'acknowledged', 'en_route', 'on_scene', 'closed')),
    received_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (dispatch_id, user_id, status)
);

-- Events committed with the change that caused them; the push process relays them to NATS.
CREATE TABLE push_outbox (
    id         uuid PRIMARY KEY,
    tenant_id  uuid NOT NULL REFERENCES tenants (id),
    subject    text NOT NULL,
    payload    bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at    timestamptz
);
CREATE INDEX push_outbox_unsent ON push_outbox (created_at) WHERE sent_at IS NULL;

-- Department-level alarms about the push channel itself (our FCM credentials): no tenant owns them.
CREATE TABLE push_health_alarms (
    id           uuid PRIMARY KEY,
    kind         text NOT NULL CHECK (kind IN ('credentials', 'third_party_auth')),
    detail       text NOT NULL,
    raised_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    occurrences  integer NOT NULL DEFAULT 1,
    cleared_at   timestamptz
);
CREATE UNIQUE INDEX push_health_alarms_open ON push_health_alarms (kind) WHERE cleared_at IS NULL;

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['push_devices', 'push_dispatches', 'push_orders', 'push_targets', 'push_deliveries',
                             'push_attempts', 'push_receipts', 'push_outbox'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = ANY (app_scope())) '
                       'WITH CHECK (tenant_id = ANY (app_scope()))', t);
    END LOOP;
END $$;

-- The API: officers register devices and post statuses; staff read dispatch reports and alarms.
GRANT SELECT, INSERT, UPDATE ON push_devices TO :app_role;
GRANT SELECT ON push_dispatches, push_orders, push_deliveries, push_attempts, push_health_alarms TO :app_role;
GRANT SELECT, UPDATE (status, status_at, status_device_id) ON push_targets TO :app_role;
GRANT SELECT, INSERT ON push_receipts, push_outbox TO :app_role;

-- The push process (department role, BYPASSRLS): consumes dispatch orders for every tenant, sends, relays.
GRANT SELECT, INSERT, UPDATE ON push_devices, push_dispatches, push_orders, push_targets, push_deliveries,
    push_attempts, push_receipts, push_outbox, push_health_alarms TO :department_role;
