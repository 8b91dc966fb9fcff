-- The relay publishes outbox rows in the order they were written: within one transaction every row has the same
-- created_at, and ids (UUIDv7) only order by millisecond, so an alert's DispatchOrdered could overtake its
-- AlertRaised. An identity column numbers rows in insertion order.
ALTER TABLE alert_outbox ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY;
DROP INDEX alert_outbox_unsent;
CREATE INDEX alert_outbox_unsent ON alert_outbox (seq) WHERE sent_at IS NULL;

-- A process that wrote rows publishes them itself right after its commit and pushes relay_after a few seconds
-- ahead; the relay only takes rows whose relay_after has passed, so it catches what that process did not publish
-- (it crashed, NATS was down) without racing it in the normal case.
ALTER TABLE alert_outbox ADD COLUMN relay_after timestamptz NOT NULL DEFAULT now();
