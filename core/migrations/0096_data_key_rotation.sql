-- `vigie keys rotate-data-key` re-seals every sealed column as the department role; the export signing keys are
-- otherwise an append-only register for it, so only their sealed private half may be rewritten.
GRANT UPDATE (private_key_sealed) ON export_signing_keys TO :department_role;
