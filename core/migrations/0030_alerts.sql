-- Alerts: alerts and their source events, operator workflow, dispatches to forces, responder statuses,
-- escalation timers, main courante, shift handovers, jurisdiction routing rules, alert policies, the outbox.

-- Department-level tuning of how a rule type becomes an alert; absent rows fall back to alerts.rules defaults.
CREATE TABLE alert_policies (
    id              uuid PRIMARY KEY,
    department_id   uuid NOT NULL REFERENCES departments (id),
    rule_type       text NOT NULL CHECK (length(rule_type) BETWEEN 1 AND 50),
    severity        integer NOT NULL CHECK (severity BETWEEN 1 AND 5),
    dedupe_window_s integer NOT NULL CHECK (dedupe_window_s BETWEEN 0 AND 86400),
    cooldown_s      integer NOT NULL CHECK (cooldown_s BETWEEN 0 AND 86400),
    sla_claim_s     integer NOT NULL CHECK (sla_claim_s BETWEEN 5 AND 86400),
    -- Only a department admin may set it; who and when are kept because it bypasses human verification.
    auto_dispatch   boolean NOT NULL DEFAULT false,
    auto_dispatch_set_by uuid REFERENCES users (id),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (department_id, rule_type)
);

-- Routing of alerts to forces beyond the default (commune → state force, opted-in municipal police, SDIS):
-- add or remove a force for a commune (NULL: any), an event type (NULL: any) and a local-time window.
CREATE TABLE routing_rules (
    id            uuid PRIMARY KEY,
    department_id uuid NOT NULL REFERENCES departments (id),
    insee_code    text REFERENCES communes (insee_code),
    event_type    text CHECK (length(event_type) BETWEEN 1 AND 50),
    start_minute  integer NOT NULL DEFAULT 0 CHECK (start_minute BETWEEN 0 AND 1440),
    end_minute    integer NOT NULL DEFAULT 1440 CHECK (end_minute BETWEEN 0 AND 1440),
    force_id      uuid NOT NULL REFERENCES forces (id) ON DELETE CASCADE,
    effect        text NOT NULL CHECK (effect IN ('add', 'remove')),
    note          text CHECK (length(note) <= 500),
    created_by    uuid REFERENCES users (id),
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX routing_rules_department ON routing_rules (department_id);

CREATE TABLE alerts (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants (id),
    camera_id        uuid NOT NULL,
    site_id          uuid NOT NULL,
    insee_code       text NOT NULL REFERENCES communes (insee_code),
    rule_id          uuid,
    rule_type        text NOT NULL,
    legal_event_type text,
    track_ids        integer[] NOT NULL DEFAULT '{}',
    severity         integer NOT NULL CHECK (severity BETWEEN 1 AND 5),
    priority         integer NOT NULL,
    state            text NOT NULL DEFAULT 'new'
                     CHECK (state IN ('new', 'claimed', 'verified', 'dispatched', 'dismissed', 'closed')),
    detail           text NOT NULL DEFAULT '',
    snapshot_key     text,
    clip_id          uuid,
    clip_status      text NOT NULL DEFAULT 'pending' CHECK (clip_status IN ('pending', 'attached', 'unavailable')),
    occurrences      integer NOT NULL DEFAULT 1,
    source_event_id  uuid NOT NULL,
    first_seen_at    timestamptz NOT NULL,
    last_seen_at     timestamptz NOT NULL,
    raised_at        timestamptz NOT NULL DEFAULT now(),
    sla_claim_due_at timestamptz NOT NULL,
    claimed_by       uuid REFERENCES users (id),
    claimed_at       timestamptz,
    verified_by      uuid REFERENCES users (id),
    verified_at      timestamptz,
    verdict          text CHECK (verdict IN ('true_positive', 'false_positive')),
    dismissed_reason text,
    outcome          text,
    closed_by        uuid REFERENCES users (id),
    closed_at        timestamptz,
    auto_dispatched  boolean NOT NULL DEFAULT false,
    call_force_prompt_at timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, camera_id) REFERENCES cameras (tenant_id, id),
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, source_event_id)
);
CREATE INDEX alerts_open ON alerts (tenant_id, state, priority DESC, raised_at) WHERE state NOT IN ('dismissed', 'closed');
CREATE INDEX alerts_dedupe ON alerts (tenant_id, camera_id, rule_type, last_seen_at DESC);
CREATE INDEX alerts_raised ON alerts (raised_at);

-- Every detection event the engine has handled, and the alert it went to: the consumer's unique key.
CREATE TABLE alert_sources (
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    event_id    uuid NOT NULL,
    alert_id    uuid,
    event_type  text NOT NULL,
    occurred_at timestamptz NOT NULL,
    handled_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, event_id)
);

-- Steps of the standard operating procedure recorded on an alert (the checklist itself is in alerts.rules).
CREATE TABLE alert_sop_steps (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    alert_id  uuid NOT NULL,
    step      text NOT NULL CHECK (length(step) BETWEEN 1 AND 50),
    done_by   uuid NOT NULL REFERENCES users (id),
    done_at   timestamptz NOT NULL DEFAULT now(),
    note      text CHECK (length(note) <= 1000),
    FOREIGN KEY (tenant_id, alert_id) REFERENCES alerts (tenant_id, id),
    PRIMARY KEY (tenant_id, alert_id, step)
);

CREATE TABLE dispatches (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants (id),
    alert_id         uuid NOT NULL,
    force_id         uuid NOT NULL REFERENCES forces (id),
    force_kind       text NOT NULL,
    officer_ids      uuid[] NOT NULL DEFAULT '{}',
    urgency          text NOT NULL CHECK (urgency IN ('routine', 'urgent', 'immediate')),
    ttl_s            integer NOT NULL CHECK (ttl_s BETWEEN 10 AND 3600),
    escalation_level integer NOT NULL DEFAULT 0,
    status           text NOT NULL DEFAULT 'ordered' CHECK (status IN (
                        'ordered', 'delivered', 'acknowledged', 'en_route', 'on_scene', 'closed', 'withdrawn')),
    auto             boolean NOT NULL DEFAULT false,
    ordered_by       uuid REFERENCES users (id),
    ordered_at       timestamptz NOT NULL DEFAULT now(),
    delivered_at     timestamptz,
    acknowledged_at  timestamptz,
    closed_at        timestamptz,
    call_force_prompt_at timestamptz,
    FOREIGN KEY (tenant_id, alert_id) REFERENCES alerts (tenant_id, id),
    UNIQUE (tenant_id, id),
    -- One order per force and alert: a double click or a redelivered command cannot page a force twice.
    UNIQUE (alert_id, force_id)
);

-- What officers' phones reported (consumed from the PUSH stream); event_id keeps the consumer idempotent.
CREATE TABLE responder_statuses (
    event_id    uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    dispatch_id uuid NOT NULL,
    alert_id    uuid NOT NULL,
    officer_id  uuid,
    device_id   uuid,
    status      text NOT NULL CHECK (status IN ('delivered', 'acknowledged', 'en_route', 'on_scene', 'closed')),
    occurred_at timestamptz NOT NULL,
    FOREIGN KEY (tenant_id, dispatch_id) REFERENCES dispatches (tenant_id, id)
);
CREATE INDEX responder_statuses_dispatch ON responder_statuses (tenant_id, dispatch_id, occurred_at);

-- Durable escalation timers: a scheduler fires the due ones (FOR UPDATE SKIP LOCKED), so they survive restarts.
CREATE TABLE escalation_timers (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants (id),
    dispatch_id  uuid NOT NULL,
    alert_id     uuid NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('receipt', 'acknowledgement')),
    level        integer NOT NULL DEFAULT 0,
    due_at       timestamptz NOT NULL,
    fired_at     timestamptz,
    cancelled_at timestamptz,
    FOREIGN KEY (tenant_id, dispatch_id) REFERENCES dispatches (tenant_id, id),
    UNIQUE (dispatch_id, kind, level)
);
CREATE INDEX escalation_timers_due ON escalation_timers (due_at) WHERE fired_at IS NULL AND cancelled_at IS NULL;

-- The main courante: shift logbook, automatic entries from alarm actions and free entries. Append-only.
CREATE TABLE logbook_entries (
    id         uuid PRIMARY KEY,
    tenant_id  uuid NOT NULL REFERENCES tenants (id),
    alert_id   uuid,
    author_id  uuid REFERENCES users (id),
    kind       text NOT NULL CHECK (kind IN ('auto', 'free')),
    action     text NOT NULL,
    text       text NOT NULL CHECK (length(text) BETWEEN 1 AND 4000),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX logbook_entries_time ON logbook_entries (tenant_id, created_at);

CREATE TABLE shift_handovers (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants (id),
    author_id    uuid NOT NULL REFERENCES users (id),
    period_start timestamptz NOT NULL,
    period_end   timestamptz NOT NULL,
    summary      jsonb NOT NULL,
    notes        text CHECK (length(notes) <= 4000),
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- Transactional outbox: written in the transaction of the change, published by the relay with Nats-Msg-Id = id.
CREATE TABLE alert_outbox (
    id         uuid PRIMARY KEY,
    tenant_id  uuid NOT NULL REFERENCES tenants (id),
    subject    text NOT NULL,
    payload    bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at    timestamptz
);
CREATE INDEX alert_outbox_unsent ON alert_outbox (created_at) WHERE sent_at IS NULL;

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['alerts', 'alert_sources', 'alert_sop_steps', 'dispatches', 'responder_statuses',
                             'escalation_timers', 'logbook_entries', 'shift_handovers', 'alert_outbox'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = ANY (app_scope())) '
                       'WITH CHECK (tenant_id = ANY (app_scope()))', t);
    END LOOP;
    FOREACH t IN ARRAY ARRAY['alert_policies', 'routing_rules'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY department_directory ON %I USING (department_id = app_department()) '
                       'WITH CHECK (department_id = app_department())', t);
    END LOOP;
END $$;

GRANT SELECT, INSERT, UPDATE ON alert_policies TO :app_role;
GRANT SELECT, INSERT, DELETE ON routing_rules TO :app_role;
GRANT SELECT, INSERT, UPDATE ON alerts, dispatches, escalation_timers TO :app_role;
-- Registers that serve as proof are append-only for the runtime role.
GRANT SELECT, INSERT ON alert_sources, alert_sop_steps, responder_statuses, logbook_entries, shift_handovers,
    alert_outbox TO :app_role;
-- The department role runs the relay and the escalation scheduler across tenants.
GRANT SELECT, INSERT, UPDATE ON alert_policies, routing_rules, alerts, alert_sources, alert_sop_steps, dispatches,
    responder_statuses, escalation_timers, logbook_entries, shift_handovers, alert_outbox TO :department_role;
