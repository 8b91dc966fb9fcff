-- Privacy masks on pixels (issue 15, CSI L251-3). Every change of a camera's masks bumps its mask version (a trigger,
-- so no write path can forget it); the recorder burns the masks of the version in force into each segment from the
-- next one on and stores that version with the segment (NULL: recorded without masks, a plain stream copy). The
-- recorder restarts its run when the version changes, which leaves a short gap of cause 'mask_changed'.
ALTER TABLE cameras ADD COLUMN privacy_masks_version integer NOT NULL DEFAULT 0;
UPDATE cameras SET privacy_masks_version = 1 WHERE privacy_masks <> '[]'::jsonb;

CREATE FUNCTION bump_privacy_masks_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.privacy_masks_version := CASE WHEN NEW.privacy_masks <> '[]'::jsonb THEN 1 ELSE 0 END;
    ELSIF NEW.privacy_masks IS DISTINCT FROM OLD.privacy_masks THEN
        NEW.privacy_masks_version := OLD.privacy_masks_version + 1;
    ELSE
        NEW.privacy_masks_version := OLD.privacy_masks_version;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER cameras_privacy_masks_version BEFORE INSERT OR UPDATE ON cameras
    FOR EACH ROW EXECUTE FUNCTION bump_privacy_masks_version();

ALTER TABLE recording_segments ADD COLUMN mask_version integer CHECK (mask_version >= 1);

ALTER TABLE recording_gaps DROP CONSTRAINT recording_gaps_cause_check;
ALTER TABLE recording_gaps ADD CONSTRAINT recording_gaps_cause_check
    CHECK (cause IN ('camera_unreachable', 'stream_stalled', 'recorder_failover', 'spool_full', 'codec_changed',
                     'recorder_stopped', 'mask_changed'));
