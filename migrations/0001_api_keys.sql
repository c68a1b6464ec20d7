-- 0001: API keys. A key is shown once at creation; only its SHA-256 is kept.
-- The prefix (the key's first 12 characters) finds the row; the hash proves it.
CREATE TABLE api_keys (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    prefix      text        NOT NULL UNIQUE,
    key_sha256  bytea       NOT NULL CHECK (length(key_sha256) = 32),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
