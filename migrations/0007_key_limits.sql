-- 0007: per-key limits. Each overrides a setting for one API key: NULL means
-- the setting (--key-rps, --key-burst, --key-max-pending-chunks), 0 no limit
-- for this key (for rps_burst: as many as rps_limit).
ALTER TABLE api_keys ADD COLUMN rps_limit integer CHECK (rps_limit >= 0);
ALTER TABLE api_keys ADD COLUMN rps_burst integer CHECK (rps_burst >= 0);
ALTER TABLE api_keys ADD COLUMN max_pending_chunks bigint CHECK (max_pending_chunks >= 0);
-- A job is refused when it would take its key past max_pending_chunks: the
-- check sums the key's active jobs' counters, found through this index (the
-- key's finished jobs, however many, are never read).
CREATE INDEX jobs_active_by_key ON jobs (api_key_id) WHERE state IN ('pending', 'running');
