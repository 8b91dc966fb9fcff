-- A phone's registration remembers the key its session proved (DPoP, RFC 9449): only a session holding that key
-- may act for the device afterwards (heartbeat, token refresh, removal, statuses naming it).
ALTER TABLE push_devices ADD COLUMN key_thumbprint text CHECK (key_thumbprint ~ '^[A-Za-z0-9_-]{43}$');
