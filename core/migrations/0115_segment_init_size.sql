-- Playback over HLS (fMP4): each recorded segment's init section (ftyp + moov) is served apart from its fragments,
-- both as byte ranges of the stored object; the recorder notes the init section's length when it seals a segment.
-- Segments recorded before this column have none: the API reads their head from the store when it needs it.
ALTER TABLE recording_segments
    ADD COLUMN init_size integer CHECK (init_size > 0 AND init_size < size_bytes);
