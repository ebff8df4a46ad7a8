-- The record map is purged by the age of each entry's last write
-- (storage.record_map_retention): one index range instead of a scan of every entry.
CREATE INDEX record_map_age ON record_map (updated_at);
