-- Workers open a transaction over the tenants an event names (Database.for_tenants); when the event names a camera,
-- this check runs in the same round trip as BEGIN and the scope: the camera must be visible under that scope (row-level
-- security), else the event lies about its tenant and is refused with SQLSTATE VG001. SECURITY INVOKER on purpose:
-- the caller's policies decide.
CREATE FUNCTION app_camera_in_scope(camera uuid) RETURNS void LANGUAGE plpgsql STABLE SECURITY INVOKER AS $$
BEGIN
    PERFORM 1 FROM cameras WHERE id = camera;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'camera % is not in the transaction''s tenant scope', camera USING ERRCODE = 'VG001';
    END IF;
END
$$;
REVOKE ALL ON FUNCTION app_camera_in_scope(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app_camera_in_scope(uuid) TO :app_role, :department_role;
