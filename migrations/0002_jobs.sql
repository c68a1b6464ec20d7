-- 0002: jobs, their documents and chunks, and the Google batches that carry them.
--
-- Chunk states: 0 pending, 1 in flight (in a batch), 2 succeeded, 3 failed.
-- A job's chunk counters are kept exact in the same transactions that move
-- chunks between states, so reading a job's stats never scans its chunks.
CREATE TABLE jobs (
    id                    uuid PRIMARY KEY,
    api_key_id            bigint      NOT NULL REFERENCES api_keys (id),
    state                 text        NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'running', 'succeeded', 'completed_with_errors', 'failed',
                         'cancelled')),
    display_name          text,
    model                 text        NOT NULL,
    task_type             text        NOT NULL,
    output_dimensionality integer     NOT NULL CHECK (output_dimensionality BETWEEN 128 AND 3072),
    normalize             boolean     NOT NULL,
    priority              integer     NOT NULL DEFAULT 0,
    max_chars             integer     NOT NULL,
    overlap_chars         integer     NOT NULL,
    documents             integer     NOT NULL,
    chunks_total          integer     NOT NULL,
    chunks_pending        integer     NOT NULL,
    chunks_in_flight      integer     NOT NULL DEFAULT 0,
    chunks_succeeded      integer     NOT NULL DEFAULT 0,
    chunks_failed         integer     NOT NULL DEFAULT 0,
    token_estimate        bigint      NOT NULL,
    created_at            timestamptz NOT NULL DEFAULT now(),
    started_at            timestamptz,
    finished_at           timestamptz,
    last_activity_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (chunks_pending >= 0 AND chunks_in_flight >= 0 AND chunks_succeeded >= 0
           AND chunks_failed >= 0),
    CHECK (chunks_pending + chunks_in_flight + chunks_succeeded + chunks_failed = chunks_total)
);
-- listing a key's jobs, newest first, with a (created_at, id) cursor
CREATE INDEX jobs_by_key ON jobs (api_key_id, created_at DESC, id DESC);
-- workers looking for work: priority, then age
CREATE INDEX jobs_active ON jobs (priority DESC, created_at) WHERE state IN ('pending', 'running');

CREATE TABLE documents (
    job_id    uuid    NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    doc_index integer NOT NULL,
    doc_id    text    NOT NULL,
    title     text,
    metadata  json, -- json, not jsonb: returned with its chunks as the caller wrote it (key order kept)
    chars     integer NOT NULL,
    PRIMARY KEY (job_id, doc_index),
    UNIQUE (job_id, doc_id)
);

CREATE TABLE batches (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id        uuid        NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    -- written before Google is called; Google echoes it, so a batch whose
    -- create outcome is unknown can be found again by listing
    display_name  text        NOT NULL UNIQUE,
    state         text        NOT NULL
        CHECK (state IN ('intent', 'submitted', 'succeeded', 'failed', 'expired', 'cancelled',
                         'released')),
    gemini_name   text UNIQUE,
    gemini_state  text,
    n_chunks      integer     NOT NULL,
    request_bytes bigint      NOT NULL,
    lease_owner   text,
    lease_until   timestamptz,
    next_poll_at  timestamptz NOT NULL DEFAULT now(),
    polls         integer     NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL DEFAULT now(),
    submitted_at  timestamptz,
    finished_at   timestamptz,
    error         text
);
CREATE INDEX batches_open ON batches (next_poll_at) WHERE state IN ('intent', 'submitted');
CREATE INDEX batches_by_job ON batches (job_id, state);

CREATE TABLE chunks (
    job_id      uuid     NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    seq         integer  NOT NULL, -- (document, chunk) order within the job
    doc_index   integer  NOT NULL,
    chunk_index integer  NOT NULL,
    char_start  integer  NOT NULL,
    char_end    integer  NOT NULL,
    tokens      integer  NOT NULL,
    text        text     NOT NULL,
    state       smallint NOT NULL DEFAULT 0 CHECK (state BETWEEN 0 AND 3),
    attempts    smallint NOT NULL DEFAULT 0,
    batch_id    bigint REFERENCES batches (id) ON DELETE SET NULL,
    embedding   bytea, -- float32 little-endian, normalised as the job asks
    error       text,
    PRIMARY KEY (job_id, seq)
);
CREATE INDEX chunks_pending ON chunks (job_id, seq) WHERE state = 0;
CREATE INDEX chunks_by_batch ON chunks (batch_id) WHERE batch_id IS NOT NULL;
