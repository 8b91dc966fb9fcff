-- No authorisation, no recording (CSI L252-1; issue 15): a camera records and runs analytics only while a prefectoral
-- authorisation the department recorded is current. One definition, read by the recorders' lease round, the
-- detector's configuration sync and the API's expiry warnings. The day is Paris's (the orders' dates are French
-- calendar days, inclusive at both ends like the event-type grants).
CREATE FUNCTION paris_today() RETURNS date LANGUAGE sql STABLE
    SET search_path = pg_catalog
    AS $$ SELECT (now() AT TIME ZONE 'Europe/Paris')::date $$;

CREATE FUNCTION camera_authorised(p_tenant_id uuid, p_camera_id uuid, p_day date) RETURNS boolean
    LANGUAGE sql STABLE SET search_path = public, pg_catalog
    AS $$
        SELECT EXISTS (SELECT 1 FROM camera_authorisations a
                        WHERE a.tenant_id = p_tenant_id AND a.camera_id = p_camera_id AND a.department_recorded
                          AND a.valid_from <= p_day AND p_day <= a.valid_until)
    $$;

GRANT EXECUTE ON FUNCTION paris_today() TO :app_role, :department_role;
GRANT EXECUTE ON FUNCTION camera_authorised(uuid, uuid, date) TO :app_role, :department_role;
