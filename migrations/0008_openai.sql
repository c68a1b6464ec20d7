-- 0008: the OpenAI-compatible surface (/openai/v1): files uploaded for
-- batches and written by them, and batches, each run as an embedd job.

-- A file: an input uploaded with purpose "batch", or an output or error file
-- a batch wrote ("batch_output"). Ids look like OpenAI's ("file-..."), and
-- belong to one API key.
CREATE TABLE openai_files (
    id          text        PRIMARY KEY,
    api_key_id  bigint      NOT NULL REFERENCES api_keys (id),
    purpose     text        NOT NULL CHECK (purpose IN ('batch', 'batch_output')),
    filename    text        NOT NULL,
    bytes       bigint      NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
-- listing a key's files, newest first, with an "after" cursor
CREATE INDEX openai_files_by_key ON openai_files (api_key_id, created_at DESC, id DESC);

-- A file's bytes, in order, in parts of about 1 MiB (written as the upload
-- or the output arrives, read back a part at a time: never held whole).
-- STORAGE EXTERNAL: out of line, uncompressed (compressing costs more time
-- than the disk it saves on JSONL of embeddings).
CREATE TABLE openai_file_parts (
    file_id text    NOT NULL REFERENCES openai_files (id) ON DELETE CASCADE,
    part    integer NOT NULL,
    data    bytea   NOT NULL,
    PRIMARY KEY (file_id, part)
);
ALTER TABLE openai_file_parts ALTER COLUMN data SET STORAGE EXTERNAL;

-- A batch: its input file is validated and becomes an embedd job (one
-- document per input text, embedded verbatim); when the job ends its output
-- and error files are written. Status is OpenAI's; the timestamps are those
-- of OpenAI's Batch object.
CREATE TABLE openai_batches (
    id                text        PRIMARY KEY,
    api_key_id        bigint      NOT NULL REFERENCES api_keys (id),
    status            text        NOT NULL DEFAULT 'validating'
        CHECK (status IN ('validating', 'failed', 'in_progress', 'finalizing', 'completed',
                          'expired', 'cancelling', 'cancelled')),
    endpoint          text        NOT NULL,
    completion_window text        NOT NULL,
    input_file_id     text        NOT NULL, -- not a foreign key: the file may be deleted later
    metadata          json,
    model             text,                 -- the lines' model, once validated
    job_id            uuid REFERENCES jobs (id) ON DELETE SET NULL,
    errors            json,                 -- validation errors: [{code, message, param, line}]
    output_file_id    text,
    error_file_id     text,
    request_total     integer     NOT NULL DEFAULT 0,
    request_completed integer     NOT NULL DEFAULT 0,
    request_failed    integer     NOT NULL DEFAULT 0,
    tokens            bigint      NOT NULL DEFAULT 0,
    created_at        timestamptz NOT NULL DEFAULT now(),
    in_progress_at    timestamptz,
    expires_at        timestamptz NOT NULL,
    finalizing_at     timestamptz,
    completed_at      timestamptz,
    failed_at         timestamptz,
    expired_at        timestamptz,
    cancelling_at     timestamptz,
    cancelled_at      timestamptz,
    -- the replica validating or finalizing it, until when (a dead one's lease expires)
    lease_owner       text,
    lease_until       timestamptz
);
CREATE INDEX openai_batches_by_key ON openai_batches (api_key_id, created_at DESC, id DESC);
-- the driver's work: batches not yet in a final status
CREATE INDEX openai_batches_open ON openai_batches (created_at)
    WHERE status IN ('validating', 'in_progress', 'finalizing', 'cancelling');

-- One line of a batch's input file that is a request: its custom_id, how it
-- is answered (the body's model string, base64 or float), and where its
-- inputs are in the job (chunk seq first_seq .. first_seq + n_inputs - 1), or
-- the error it gets without reaching Google (the response body of a 400).
CREATE TABLE openai_batch_lines (
    batch_id  text    NOT NULL REFERENCES openai_batches (id) ON DELETE CASCADE,
    line      integer NOT NULL, -- 1-based line number in the input file
    custom_id text    NOT NULL,
    model     text    NOT NULL,
    base64    boolean NOT NULL,
    first_seq integer,
    n_inputs  integer NOT NULL,
    error     json,
    PRIMARY KEY (batch_id, line)
);
