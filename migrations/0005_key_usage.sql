-- 0005: when an API key was last used (touched at most once a minute per
-- process, when the key is looked up in the database).
ALTER TABLE api_keys ADD COLUMN last_used_at timestamptz;
