-- One outbox shape for every domain (core/outbox.py): push_outbox gains the insertion order and the direct-path
-- grace that alert_outbox has (0031), so one relay serves both tables.
ALTER TABLE push_outbox ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY;
ALTER TABLE push_outbox ADD COLUMN relay_after timestamptz NOT NULL DEFAULT now();
DROP INDEX push_outbox_unsent;
CREATE INDEX push_outbox_unsent ON push_outbox (seq) WHERE sent_at IS NULL;
