-- What a responder found, reported with their `closed` status (the mayor's monthly report counts them).
ALTER TABLE push_receipts ADD COLUMN outcome text
    CHECK (outcome IN ('arrest_in_flagrante_delicto', 'people_found', 'nobody_found', 'false_alarm'));
ALTER TABLE push_receipts ADD CONSTRAINT push_receipts_outcome_on_close CHECK (outcome IS NULL OR status = 'closed');
