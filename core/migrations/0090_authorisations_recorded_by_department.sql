-- Prefectoral authorisations are the prefecture's, recorded by the department (issue 11): who recorded each one, the
-- prefectoral order's scan (a PDF in the object store, with its SHA-256), and a guard refusing any write from a
-- request that does not act department-wide (a tenant admin's transaction carries no department directory).

ALTER TABLE camera_authorisations
    ADD COLUMN recorded_by             uuid,
    -- False for an authorisation a tenant admin recorded before this migration: it gives no legal basis any more.
    ADD COLUMN department_recorded     boolean NOT NULL DEFAULT true,
    ADD COLUMN order_scan_key          text,
    ADD COLUMN order_scan_version_id   text,
    ADD COLUMN order_scan_sha256       text CHECK (order_scan_sha256 ~ '^[0-9a-f]{64}$'),
    -- tenants.rules.ORDER_SCAN_MAX_BYTES (10 MiB): the upload refuses anything larger before it reaches here.
    ADD COLUMN order_scan_size         bigint CHECK (order_scan_size BETWEEN 1 AND 10485760),
    ADD COLUMN order_scan_uploaded_at  timestamptz,
    ADD COLUMN order_scan_uploaded_by  uuid,
    ADD CONSTRAINT order_scan_complete CHECK (
        (order_scan_key IS NULL) = (order_scan_sha256 IS NULL)
        AND (order_scan_key IS NULL) = (order_scan_size IS NULL)
        AND (order_scan_key IS NULL) = (order_scan_uploaded_at IS NULL));

-- Authorisations recorded through the API carry an `authorisation.create` journal line naming who recorded them.
-- The owner reads past row-level security for this one statement only (FORCE is restored in the same transaction).
ALTER TABLE camera_authorisations NO FORCE ROW LEVEL SECURITY;
ALTER TABLE access_journal NO FORCE ROW LEVEL SECURITY;
UPDATE camera_authorisations a
   SET recorded_by = j.actor_user_id, department_recorded = (j.actor_role = 'department_admin')
  FROM access_journal j
 WHERE j.tenant_id = a.tenant_id AND j.action = 'authorisation.create' AND j.target_type = 'authorisation'
   AND j.target_id = a.id::text;
ALTER TABLE camera_authorisations FORCE ROW LEVEL SECURITY;
ALTER TABLE access_journal FORCE ROW LEVEL SECURITY;

-- Defence in depth behind the service's role check: a scoped transaction without the department directory (a tenant
-- admin's, an officer's, a worker's) cannot write an authorisation or an event-type grant. The department role (seed,
-- jobs) sets no scope and passes; deletes cascading from a camera's removal are not writes of this kind.
CREATE FUNCTION authorisation_written_by_department() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('app.tenant_ids', true), '') <> ''
       AND coalesce(current_setting('app.department_id', true), '') = '' THEN
        RAISE EXCEPTION 'prefectoral authorisations are recorded by the department'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER camera_authorisations_department_only BEFORE INSERT OR UPDATE ON camera_authorisations
    FOR EACH ROW EXECUTE FUNCTION authorisation_written_by_department();
CREATE TRIGGER authorised_event_types_department_only BEFORE INSERT OR UPDATE ON authorised_event_types
    FOR EACH ROW EXECUTE FUNCTION authorisation_written_by_department();
