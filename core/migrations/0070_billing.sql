-- Billing: the camera registry's history, the department's catalogue (plans, versioned prices, the issuing body),
-- contracts (conventions) with a plan per camera, monthly runs, invoices and credit notes (immutable once issued,
-- numbered without gaps per department and year), payments; and the read contract billing and the mayor's report
-- hold with the other domains: security-invoker views, so row-level security of the underlying tables applies.

-- === Camera registry history ===========================================================================
-- Written only by the trigger on `cameras` below: a camera added, its status changed (suspended: `disabled`), or
-- removed. Billing counts camera-days from it, so nothing may bypass it: the trigger function runs as the table's
-- owner, the only role the insert policy admits; no other role holds INSERT, nobody updates or deletes.
CREATE TABLE camera_registry_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    camera_id   uuid NOT NULL,
    occurred_at timestamptz NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('added', 'status_changed', 'removed')),
    status      text NOT NULL,
    name        text NOT NULL,
    insee_code  text NOT NULL
);
CREATE INDEX camera_registry_events_camera ON camera_registry_events (tenant_id, camera_id, occurred_at, id);

-- clock_timestamp(), not now(): two changes in one transaction keep their order and their own instants.
CREATE FUNCTION camera_registry_record() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO public.camera_registry_events (tenant_id, camera_id, occurred_at, kind, status, name, insee_code)
        VALUES (NEW.tenant_id, NEW.id, clock_timestamp(), 'added', NEW.status, NEW.name, NEW.insee_code);
        RETURN NEW;
    ELSIF TG_OP = 'UPDATE' THEN
        IF NEW.status IS DISTINCT FROM OLD.status THEN
            INSERT INTO public.camera_registry_events (tenant_id, camera_id, occurred_at, kind, status, name,
                                                       insee_code)
            VALUES (NEW.tenant_id, NEW.id, clock_timestamp(), 'status_changed', NEW.status, NEW.name, NEW.insee_code);
        END IF;
        RETURN NEW;
    END IF;
    INSERT INTO public.camera_registry_events (tenant_id, camera_id, occurred_at, kind, status, name, insee_code)
    VALUES (OLD.tenant_id, OLD.id, clock_timestamp(), 'removed', OLD.status, OLD.name, OLD.insee_code);
    RETURN OLD;
END
$$;
REVOKE ALL ON FUNCTION camera_registry_record() FROM PUBLIC;
CREATE TRIGGER cameras_registry_history AFTER INSERT OR UPDATE OF status OR DELETE ON cameras
    FOR EACH ROW EXECUTE FUNCTION camera_registry_record();

-- Cameras that existed before this migration enter the history at their creation (with today's status).
INSERT INTO camera_registry_events (tenant_id, camera_id, occurred_at, kind, status, name, insee_code)
    SELECT tenant_id, id, created_at, 'added', status, name, insee_code FROM cameras;

-- === Catalogue ===========================================================================================
-- The body that issues the invoices (the department or its syndicat mixte): the seller of every invoice.
CREATE TABLE billing_issuers (
    department_id  uuid PRIMARY KEY REFERENCES departments (id),
    legal_name     text NOT NULL CHECK (length(legal_name) BETWEEN 1 AND 200),
    siret          text NOT NULL CHECK (siret ~ '^[0-9]{14}$'),
    vat_number     text NOT NULL CHECK (vat_number ~ '^FR[0-9A-Z]{2}[0-9]{9}$'),
    address_line   text NOT NULL CHECK (length(address_line) BETWEEN 1 AND 200),
    postcode       text NOT NULL CHECK (postcode ~ '^[0-9]{5}$'),
    city           text NOT NULL CHECK (length(city) BETWEEN 1 AND 100),
    iban           text CHECK (iban ~ '^FR[0-9]{2}[0-9A-Z]{23}$'),
    payment_days   integer NOT NULL DEFAULT 30 CHECK (payment_days BETWEEN 0 AND 60),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    updated_by     uuid
);

CREATE TABLE billing_plans (
    id            uuid PRIMARY KEY,
    department_id uuid NOT NULL REFERENCES departments (id),
    code          text NOT NULL CHECK (code ~ '^[a-z0-9_]{2,40}$'),
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    description   text CHECK (length(description) <= 1000),
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (department_id, code),
    UNIQUE (department_id, id)
);

-- Versioned prices: a row is never changed; a new one takes effect on its date. Invoices copy the amounts they use,
-- so a new price never alters an issued invoice.
CREATE TABLE billing_plan_prices (
    id                   uuid PRIMARY KEY,
    department_id        uuid NOT NULL,
    plan_id              uuid NOT NULL,
    effective_from       date NOT NULL,
    monthly_price_ht     numeric(12, 2) NOT NULL CHECK (monthly_price_ht >= 0 AND monthly_price_ht < 100000),
    -- Usage prices; NULL: the usage appears on the annex for information only.
    detector_hour_price  numeric(12, 4) CHECK (detector_hour_price >= 0 AND detector_hour_price < 10000),
    storage_gb_day_price numeric(12, 4) CHECK (storage_gb_day_price >= 0 AND storage_gb_day_price < 10000),
    created_by           uuid,
    created_at           timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (department_id, plan_id) REFERENCES billing_plans (department_id, id),
    UNIQUE (plan_id, effective_from)
);

-- === Contracts ===========================================================================================
CREATE TABLE billing_contracts (
    id                     uuid PRIMARY KEY,
    tenant_id              uuid NOT NULL REFERENCES tenants (id),
    department_id          uuid NOT NULL REFERENCES departments (id),
    reference              text NOT NULL CHECK (length(reference) BETWEEN 1 AND 50),
    start_date             date NOT NULL,
    end_date               date,
    buyer_name             text NOT NULL CHECK (length(buyer_name) BETWEEN 1 AND 200),
    buyer_siret            text NOT NULL CHECK (buyer_siret ~ '^[0-9]{14}$'),
    buyer_address_line     text NOT NULL CHECK (length(buyer_address_line) BETWEEN 1 AND 200),
    buyer_postcode         text NOT NULL CHECK (buyer_postcode ~ '^[0-9]{5}$'),
    buyer_city             text NOT NULL CHECK (length(buyer_city) BETWEEN 1 AND 100),
    chorus_service_code    text CHECK (length(chorus_service_code) BETWEEN 1 AND 100),
    engagement_number      text CHECK (length(engagement_number) BETWEEN 1 AND 50),
    billing_contact_name   text NOT NULL CHECK (length(billing_contact_name) BETWEEN 1 AND 200),
    billing_contact_email  text NOT NULL CHECK (billing_contact_email ~ '^[^@\s]+@[^@\s]+$'
                                                AND length(billing_contact_email) <= 254),
    availability_target    numeric(5, 2) NOT NULL CHECK (availability_target BETWEEN 50 AND 100),
    sla_credit_percent_per_point numeric(5, 2) NOT NULL CHECK (sla_credit_percent_per_point BETWEEN 0 AND 100),
    sla_credit_cap_percent numeric(5, 2) NOT NULL CHECK (sla_credit_cap_percent BETWEEN 0 AND 100),
    created_by             uuid,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id),
    UNIQUE (department_id, reference),
    CHECK (end_date IS NULL OR end_date >= start_date)
);
CREATE INDEX billing_contracts_tenant ON billing_contracts (tenant_id, start_date);

-- The plan of each camera under a contract, from a date to a date (both included; NULL: open).
CREATE TABLE billing_contract_cameras (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL,
    department_id uuid NOT NULL,
    contract_id   uuid NOT NULL,
    -- No foreign key to cameras: a removed camera keeps its billing history (the registry keeps its name).
    camera_id     uuid NOT NULL,
    plan_id       uuid NOT NULL,
    start_date    date NOT NULL,
    end_date      date,
    created_by    uuid,
    created_at    timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, contract_id) REFERENCES billing_contracts (tenant_id, id),
    FOREIGN KEY (department_id, plan_id) REFERENCES billing_plans (department_id, id),
    CHECK (end_date IS NULL OR end_date >= start_date)
);
CREATE INDEX billing_contract_cameras_camera ON billing_contract_cameras (tenant_id, camera_id, start_date);
CREATE INDEX billing_contract_cameras_contract ON billing_contract_cameras (contract_id);

-- No two contracts of a tenant, and no two plans of a camera, on the same day. An exclusion constraint would need
-- btree_gist, which the embedded Postgres lacks: a trigger serialised per tenant (or camera) by an advisory lock
-- does the same check and raises the exclusion-violation SQLSTATE that a constraint would.
CREATE FUNCTION billing_no_overlap() RETURNS trigger LANGUAGE plpgsql SECURITY INVOKER AS $$
DECLARE
    clash uuid;
BEGIN
    IF TG_TABLE_NAME = 'billing_contracts' THEN
        PERFORM pg_advisory_xact_lock(hashtextextended('billing_contracts:' || NEW.tenant_id, 0));
        SELECT id INTO clash FROM billing_contracts
         WHERE tenant_id = NEW.tenant_id AND id <> NEW.id
           AND daterange(start_date, end_date, '[]') && daterange(NEW.start_date, NEW.end_date, '[]')
         LIMIT 1;
    ELSE
        PERFORM pg_advisory_xact_lock(hashtextextended('billing_contract_cameras:' || NEW.camera_id, 0));
        SELECT id INTO clash FROM billing_contract_cameras
         WHERE tenant_id = NEW.tenant_id AND camera_id = NEW.camera_id AND id <> NEW.id
           AND daterange(start_date, end_date, '[]') && daterange(NEW.start_date, NEW.end_date, '[]')
         LIMIT 1;
    END IF;
    IF clash IS NOT NULL THEN
        RAISE EXCEPTION '% overlaps % on some day', NEW.id, clash USING ERRCODE = 'exclusion_violation';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER billing_contracts_no_overlap BEFORE INSERT OR UPDATE OF start_date, end_date ON billing_contracts
    FOR EACH ROW EXECUTE FUNCTION billing_no_overlap();
CREATE TRIGGER billing_contract_cameras_no_overlap BEFORE INSERT OR UPDATE OF start_date, end_date
    ON billing_contract_cameras FOR EACH ROW EXECUTE FUNCTION billing_no_overlap();

-- === Runs, numbering, invoices, payments =================================================================
CREATE TABLE billing_runs (
    id            uuid PRIMARY KEY,
    department_id uuid NOT NULL REFERENCES departments (id),
    month         date NOT NULL CHECK (extract(day FROM month) = 1),
    started_by    uuid,
    started_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    summary       jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX billing_runs_month ON billing_runs (department_id, month);

-- One counter per department and year; the row lock taken by the increment is held until the issuing transaction
-- ends, so a number is used exactly when its invoice commits: no gap, no duplicate, whatever runs at once.
CREATE TABLE billing_number_counters (
    department_id uuid NOT NULL REFERENCES departments (id),
    year          integer NOT NULL CHECK (year BETWEEN 2000 AND 2999),
    last_number   integer NOT NULL CHECK (last_number >= 1),
    PRIMARY KEY (department_id, year)
);

CREATE TABLE billing_invoices (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants (id),
    department_id    uuid NOT NULL REFERENCES departments (id),
    kind             text NOT NULL CHECK (kind IN ('invoice', 'credit_note')),
    status           text NOT NULL CHECK (status IN ('draft', 'issued', 'sent', 'paid', 'cancelled')),
    number           text,
    year             integer,
    sequence         integer,
    period_start     date NOT NULL CHECK (extract(day FROM period_start) = 1),
    period_end       date NOT NULL,
    issue_date       date,
    due_date         date,
    credit_of        uuid REFERENCES billing_invoices (id),
    credit_reason    text CHECK (length(credit_reason) BETWEEN 1 AND 500),
    contract_id      uuid NOT NULL,
    run_id           uuid,
    -- Who bought and who sold, copied at issue: a later change of the contract or the issuer alters no invoice.
    buyer            jsonb NOT NULL,
    seller           jsonb NOT NULL,
    currency         text NOT NULL DEFAULT 'EUR' CHECK (currency = 'EUR'),
    vat_rate         numeric(5, 2) NOT NULL CHECK (vat_rate >= 0 AND vat_rate < 100),
    total_ht         numeric(14, 2) NOT NULL DEFAULT 0,
    total_vat        numeric(14, 2) NOT NULL DEFAULT 0,
    total_ttc        numeric(14, 2) NOT NULL DEFAULT 0,
    -- Metering behind the lines: camera-days per camera, availability, detector time, storage (the annex).
    annex            jsonb NOT NULL DEFAULT '{}'::jsonb,
    issued_at        timestamptz,
    sent_at          timestamptz,
    paid_at          timestamptz,
    cancelled_at     timestamptz,
    document_key     text,
    document_sha256  text CHECK (document_sha256 ~ '^[0-9a-f]{64}$'),
    created_at       timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, contract_id) REFERENCES billing_contracts (tenant_id, id),
    UNIQUE (tenant_id, id),
    UNIQUE (department_id, number),
    UNIQUE (department_id, year, sequence),
    CHECK ((kind = 'credit_note') = (credit_of IS NOT NULL)),
    CHECK (status = 'draft' OR (number IS NOT NULL AND issue_date IS NOT NULL AND issued_at IS NOT NULL))
);
-- One live invoice per tenant and month (a cancelled one may be replaced), one credit note per invoice.
CREATE UNIQUE INDEX billing_invoices_one_per_month ON billing_invoices (tenant_id, period_start)
    WHERE kind = 'invoice' AND status <> 'cancelled';
CREATE UNIQUE INDEX billing_invoices_one_credit_note ON billing_invoices (credit_of) WHERE kind = 'credit_note';
CREATE INDEX billing_invoices_period ON billing_invoices (department_id, period_start);

CREATE TABLE billing_invoice_lines (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL,
    invoice_id    uuid NOT NULL,
    position      integer NOT NULL CHECK (position >= 1),
    kind          text NOT NULL CHECK (kind IN ('plan', 'sla_credit', 'detector_usage', 'storage_usage')),
    description   text NOT NULL CHECK (length(description) BETWEEN 1 AND 500),
    plan_id       uuid,
    price_id      uuid,
    camera_id     uuid,
    quantity      numeric(14, 4) NOT NULL,
    unit_code     text NOT NULL CHECK (unit_code ~ '^[A-Z0-9]{2,3}$'),
    unit_price    numeric(14, 4) NOT NULL CHECK (unit_price >= 0),
    base_quantity numeric(10, 2) NOT NULL DEFAULT 1 CHECK (base_quantity > 0),
    net_amount    numeric(14, 2) NOT NULL,
    vat_rate      numeric(5, 2) NOT NULL,
    FOREIGN KEY (tenant_id, invoice_id) REFERENCES billing_invoices (tenant_id, id),
    UNIQUE (invoice_id, position)
);

CREATE TABLE billing_payments (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL,
    invoice_id  uuid NOT NULL,
    amount      numeric(14, 2) NOT NULL CHECK (amount > 0),
    paid_on     date NOT NULL,
    method      text NOT NULL CHECK (method IN ('transfer', 'public_treasury', 'direct_debit', 'cheque', 'other')),
    reference   text CHECK (length(reference) BETWEEN 1 AND 100),
    recorded_by uuid,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, invoice_id) REFERENCES billing_invoices (tenant_id, id)
);
CREATE INDEX billing_payments_invoice ON billing_payments (invoice_id);

-- Issued documents are immutable. A draft (inside its issuing transaction) is free; once issued, only the status may
-- move forward and the document reference be set once; nothing is ever deleted. SQLSTATE VG202 for every refusal.
CREATE FUNCTION billing_invoice_guard() RETURNS trigger LANGUAGE plpgsql SECURITY INVOKER AS $$
DECLARE
    moving CONSTANT text[] := ARRAY['status', 'sent_at', 'paid_at', 'cancelled_at', 'document_key', 'document_sha256'];
    lines_ht numeric;
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'billing documents are never deleted' USING ERRCODE = 'VG202';
    END IF;
    IF TG_OP = 'INSERT' THEN
        IF NEW.status <> 'draft' THEN
            RAISE EXCEPTION 'a billing document is inserted as a draft, then issued' USING ERRCODE = 'VG202';
        END IF;
        RETURN NEW;
    END IF;
    IF OLD.status = 'draft' THEN
        IF NEW.status NOT IN ('draft', 'issued') THEN
            RAISE EXCEPTION 'a draft can only be issued' USING ERRCODE = 'VG202';
        END IF;
        IF NEW.status = 'issued' THEN
            SELECT coalesce(sum(net_amount), 0) INTO lines_ht FROM billing_invoice_lines WHERE invoice_id = NEW.id;
            IF lines_ht <> NEW.total_ht OR NEW.total_ht + NEW.total_vat <> NEW.total_ttc THEN
                RAISE EXCEPTION 'totals of % do not add up to its lines', NEW.id USING ERRCODE = 'VG202';
            END IF;
        END IF;
        RETURN NEW;
    END IF;
    IF (to_jsonb(NEW) - moving) IS DISTINCT FROM (to_jsonb(OLD) - moving) THEN
        RAISE EXCEPTION 'issued billing document % cannot be changed (a credit note corrects it)', OLD.number
            USING ERRCODE = 'VG202';
    END IF;
    IF OLD.document_key IS NOT NULL AND (NEW.document_key IS DISTINCT FROM OLD.document_key
                                         OR NEW.document_sha256 IS DISTINCT FROM OLD.document_sha256) THEN
        RAISE EXCEPTION 'the document of % is already stored', OLD.number USING ERRCODE = 'VG202';
    END IF;
    IF NEW.status <> OLD.status AND NOT (
        (OLD.status = 'issued' AND NEW.status IN ('sent', 'paid', 'cancelled'))
        OR (OLD.status = 'sent' AND NEW.status IN ('paid', 'cancelled'))
        OR (OLD.status = 'paid' AND NEW.status = 'cancelled' AND OLD.kind = 'invoice')) THEN
        RAISE EXCEPTION '% cannot go from % to %', OLD.number, OLD.status, NEW.status USING ERRCODE = 'VG202';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER billing_invoices_guard BEFORE INSERT OR UPDATE OR DELETE ON billing_invoices
    FOR EACH ROW EXECUTE FUNCTION billing_invoice_guard();

CREATE FUNCTION billing_append_only_guard() RETURNS trigger LANGUAGE plpgsql SECURITY INVOKER AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF TG_TABLE_NAME = 'billing_invoice_lines' AND NOT EXISTS (
                SELECT 1 FROM billing_invoices WHERE id = NEW.invoice_id AND status = 'draft') THEN
            RAISE EXCEPTION 'lines are added to a draft only' USING ERRCODE = 'VG202';
        END IF;
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '% rows are never changed or deleted', TG_TABLE_NAME USING ERRCODE = 'VG202';
END
$$;
CREATE TRIGGER billing_invoice_lines_guard BEFORE INSERT OR UPDATE OR DELETE ON billing_invoice_lines
    FOR EACH ROW EXECUTE FUNCTION billing_append_only_guard();
CREATE TRIGGER billing_payments_guard BEFORE UPDATE OR DELETE ON billing_payments
    FOR EACH ROW EXECUTE FUNCTION billing_append_only_guard();
CREATE TRIGGER billing_plan_prices_guard BEFORE UPDATE OR DELETE ON billing_plan_prices
    FOR EACH ROW EXECUTE FUNCTION billing_append_only_guard();

-- === Row-level security ==================================================================================
-- Tenant rows: the tenant's own scope (a mayor's office reads its contract and invoices), or the department's staff
-- through the department GUC (department admins bill communes that are not under live supervision, whose images
-- they never see). What each role may do is decided by the service (billing.service).
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['billing_contracts', 'billing_invoices'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_or_department ON %I '
                       'USING (tenant_id = ANY (app_scope()) OR department_id = app_department()) '
                       'WITH CHECK (tenant_id = ANY (app_scope()) OR department_id = app_department())', t);
    END LOOP;
    FOREACH t IN ARRAY ARRAY['billing_contract_cameras', 'billing_invoice_lines', 'billing_payments'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
    END LOOP;
    -- Department-level rows: the department's staff; plans and prices also to member tenants (their price list).
    FOREACH t IN ARRAY ARRAY['billing_issuers', 'billing_runs', 'billing_number_counters'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY department_only ON %I USING (department_id = app_department()) '
                       'WITH CHECK (department_id = app_department())', t);
    END LOOP;
    FOREACH t IN ARRAY ARRAY['billing_plans', 'billing_plan_prices'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY department_catalogue ON %I USING (department_id = app_department() '
                       'OR department_id IN (SELECT department_id FROM tenants WHERE id = ANY (app_scope()))) '
                       'WITH CHECK (department_id = app_department())', t);
    END LOOP;
END $$;
-- The registry: read within the scope; written only by its owner (the cameras trigger's SECURITY DEFINER function).
ALTER TABLE camera_registry_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE camera_registry_events FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON camera_registry_events USING (tenant_id = ANY (app_scope()))
    WITH CHECK (current_user = (SELECT r.rolname FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner
                                 WHERE c.oid = 'public.camera_registry_events'::regclass));
-- Child rows follow their parent's visibility (the parent's policy applies inside the subquery).
CREATE POLICY follows_contract ON billing_contract_cameras
    USING (EXISTS (SELECT 1 FROM billing_contracts c WHERE c.id = contract_id))
    WITH CHECK (EXISTS (SELECT 1 FROM billing_contracts c WHERE c.id = contract_id));
CREATE POLICY follows_invoice ON billing_invoice_lines
    USING (EXISTS (SELECT 1 FROM billing_invoices i WHERE i.id = invoice_id))
    WITH CHECK (EXISTS (SELECT 1 FROM billing_invoices i WHERE i.id = invoice_id));
CREATE POLICY follows_invoice ON billing_payments
    USING (EXISTS (SELECT 1 FROM billing_invoices i WHERE i.id = invoice_id))
    WITH CHECK (EXISTS (SELECT 1 FROM billing_invoices i WHERE i.id = invoice_id));

-- === The read contract with the other domains ==============================================================
-- Billing and the report read other domains' data only through these views (security invoker: the caller's
-- row-level security applies). A domain that changes its tables keeps these views' columns, and nothing else.

-- Camera-days: the registry's history.
CREATE VIEW billing_camera_registry_v WITH (security_invoker = true) AS
    SELECT tenant_id, camera_id, occurred_at, id AS seq, kind, status, name, insee_code FROM camera_registry_events;

-- Unavailability of a camera for the SLA: the recorder's gaps. Camera health history (another issue) joins here
-- with its own `source`, and billing picks it up unchanged.
CREATE VIEW billing_camera_outages_v WITH (security_invoker = true) AS
    SELECT tenant_id, camera_id, start_at, end_at, 'recording_gap'::text AS source FROM recording_gaps;

-- Detector time, metered by the detection worker per tenant and day.
CREATE VIEW billing_detector_usage_v WITH (security_invoker = true) AS
    SELECT tenant_id, day, detector_seconds FROM detector_usage;

-- Every recorded segment, kept or already destroyed (the destruction register keeps what the index forgot):
-- storage GB-days and recorded hours.
CREATE VIEW billing_segments_v WITH (security_invoker = true) AS
    SELECT tenant_id, camera_id, start_at, end_at, size_bytes, NULL::timestamptz AS destroyed_at
      FROM recording_segments
    UNION ALL
    SELECT tenant_id, camera_id, start_at, end_at, size_bytes, destroyed_at
      FROM destruction_register WHERE recording_type = 'segment';

-- The mayor's report: alerts with their verification and first dispatch.
CREATE VIEW report_alerts_v WITH (security_invoker = true) AS
    SELECT a.tenant_id, a.id AS alert_id, a.camera_id, a.insee_code, a.rule_type, a.state, a.raised_at,
           a.verified_at, a.verdict, (a.state = 'dismissed') AS dismissed,
           (SELECT min(d.ordered_at) FROM dispatches d WHERE d.tenant_id = a.tenant_id AND d.alert_id = a.id)
               AS first_dispatch_at
      FROM alerts a;

-- Responders: when each dispatch was ordered, when an officer reported on scene, and what they found.
CREATE VIEW report_responders_v WITH (security_invoker = true) AS
    SELECT d.tenant_id, d.id AS dispatch_id, d.alert_id, d.camera_id, d.ordered_at,
           (SELECT min(r.received_at) FROM push_receipts r WHERE r.dispatch_id = d.id AND r.status = 'on_scene')
               AS on_scene_at,
           (SELECT min(r.received_at) FROM push_receipts r WHERE r.dispatch_id = d.id AND r.status = 'closed')
               AS closed_at
      FROM push_dispatches d;

-- Judicial requisitions and when they were served (an export handed over).
CREATE VIEW report_requisitions_v WITH (security_invoker = true) AS
    SELECT q.tenant_id, q.id AS requisition_id, q.camera_ids, q.received_at,
           (SELECT min(t.transmitted_at) FROM evidence_exports e JOIN export_transmissions t ON t.export_id = e.id
             WHERE e.requisition_id = q.id) AS served_at
      FROM requisitions q;

-- === Grants =================================================================================================
GRANT SELECT ON camera_registry_events TO :app_role, :department_role;
GRANT SELECT, INSERT, UPDATE ON billing_issuers, billing_contracts TO :app_role;
GRANT SELECT, INSERT ON billing_plans, billing_plan_prices, billing_payments TO :app_role;
GRANT SELECT, INSERT, UPDATE ON billing_contract_cameras, billing_runs, billing_number_counters,
    billing_invoices TO :app_role;
GRANT SELECT, INSERT ON billing_invoice_lines TO :app_role;
GRANT SELECT ON billing_camera_registry_v, billing_camera_outages_v, billing_detector_usage_v, billing_segments_v,
    report_alerts_v, report_responders_v, report_requisitions_v TO :app_role;
-- The department role (seed and tests of a second department) writes what the runtime role writes.
GRANT SELECT, INSERT, UPDATE ON billing_issuers, billing_plans, billing_plan_prices, billing_contracts,
    billing_contract_cameras, billing_runs, billing_number_counters, billing_invoices, billing_invoice_lines,
    billing_payments TO :department_role;
GRANT SELECT ON billing_camera_registry_v, billing_camera_outages_v, billing_detector_usage_v, billing_segments_v,
    report_alerts_v, report_responders_v, report_requisitions_v TO :department_role;
