-- 0004: collections (a corpus in one embedding space, upserted by document
-- id), content-hash reuse of vectors within an API key, idempotency keys and
-- the token counts behind cost accounting.

CREATE TABLE collections (
    id                    uuid PRIMARY KEY,
    api_key_id            bigint      NOT NULL REFERENCES api_keys (id),
    name                  text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    -- the embedding space, fixed at creation
    model                 text        NOT NULL,
    output_dimensionality integer     NOT NULL CHECK (output_dimensionality BETWEEN 128 AND 3072),
    task_type             text        NOT NULL,
    query_task_type       text        NOT NULL,
    normalize             boolean     NOT NULL,
    max_chars             integer     NOT NULL,
    overlap_chars         integer     NOT NULL,
    -- moves whenever a document's current version changes (caches of the
    -- collection's vectors, in this replica or another, compare it)
    version               bigint      NOT NULL DEFAULT 0,
    documents             integer     NOT NULL DEFAULT 0, -- documents with a current version
    created_at            timestamptz NOT NULL DEFAULT now(),
    UNIQUE (api_key_id, name)
);
-- listing a key's collections, newest first, with a (created_at, id) cursor
CREATE INDEX collections_by_key ON collections (api_key_id, created_at DESC, id DESC);

-- A job either stands alone or upserts into a collection. Deleting the
-- collection cancels its jobs first and leaves them as history.
ALTER TABLE jobs ADD COLUMN collection_id uuid REFERENCES collections (id) ON DELETE SET NULL;
CREATE INDEX jobs_by_collection ON jobs (collection_id) WHERE collection_id IS NOT NULL;
-- what an upsert did with its documents, and ids it removed
ALTER TABLE jobs ADD COLUMN documents_new integer NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN documents_updated integer NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN documents_unchanged integer NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN documents_metadata integer NOT NULL DEFAULT 0; -- metadata-only changes
ALTER TABLE jobs ADD COLUMN documents_deleted integer NOT NULL DEFAULT 0;
-- chunks filled from a vector already stored under the same API key
ALTER TABLE jobs ADD COLUMN chunks_reused integer NOT NULL DEFAULT 0;
-- Tokens, for cost: of succeeded chunks sent through a batch or the
-- interactive API, of reused chunks, and how many of those counts are
-- embedd's estimate (Google gave none) rather than Google's.
ALTER TABLE jobs ADD COLUMN tokens_batch bigint NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN tokens_interactive bigint NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN tokens_reused bigint NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN tokens_estimated bigint NOT NULL DEFAULT 0;

-- A document as stored by a job: where its chunks are (seq range), and the
-- SHA-256 of what its vectors depend on (title and text) and of its metadata.
ALTER TABLE documents ADD COLUMN first_seq integer;
ALTER TABLE documents ADD COLUMN n_chunks integer;
ALTER TABLE documents ADD COLUMN chunks_done integer NOT NULL DEFAULT 0; -- chunks with a vector
ALTER TABLE documents ADD COLUMN content_sha256 bytea;

-- The identity of a chunk's vector: SHA-256 over everything that determines
-- it (store/identity.c: model, dimensions, task type, normalisation, title
-- when sent, text). A vector stored under an API key is reused for every
-- later chunk of that key with the same identity, never across keys.
ALTER TABLE chunks ADD COLUMN key_id bigint;
ALTER TABLE chunks ADD COLUMN identity bytea;
ALTER TABLE chunks ADD COLUMN reused boolean NOT NULL DEFAULT false;
ALTER TABLE chunks ADD COLUMN google_tokens integer; -- Google's count, when it gave one
CREATE INDEX chunks_by_identity ON chunks (key_id, identity) WHERE state = 2;

-- A collection's documents by id: the current version (the job and document
-- row holding its chunks) and, while one is being embedded, the next. A new
-- version becomes current in the transaction that stores its last vector;
-- until then, and if it fails, the current one stays.
CREATE TABLE collection_documents (
    collection_id        uuid        NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
    doc_id               text        NOT NULL,
    version              integer     NOT NULL DEFAULT 0, -- 0: no current version yet
    job_id               uuid,                            -- the current version's job
    doc_index            integer,                         -- and its document row
    content_sha256       bytea,
    metadata             json,
    next_job_id          uuid,                            -- the version being embedded
    next_doc_index       integer,
    next_content_sha256  bytea,
    error                text,                            -- why the last new version failed
    updated_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (collection_id, doc_id),
    FOREIGN KEY (job_id, doc_index) REFERENCES documents (job_id, doc_index),
    FOREIGN KEY (next_job_id, next_doc_index) REFERENCES documents (job_id, doc_index)
        ON DELETE SET NULL
);
CREATE INDEX collection_documents_next ON collection_documents (next_job_id, next_doc_index)
    WHERE next_job_id IS NOT NULL;
CREATE INDEX collection_documents_current ON collection_documents (job_id, doc_index)
    WHERE job_id IS NOT NULL;

-- Idempotency-Key: the first request with a key (per API key) is stored with
-- the SHA-256 of its body and the resource it created; a repeat within 24 h
-- gets the same answer.
CREATE TABLE idempotency_keys (
    api_key_id    bigint      NOT NULL REFERENCES api_keys (id),
    key           text        NOT NULL,
    request_sha256 bytea      NOT NULL,
    method        text        NOT NULL,
    path          text        NOT NULL,
    status        integer     NOT NULL,
    resource_id   text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (api_key_id, key)
);
CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at);
