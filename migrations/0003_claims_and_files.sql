-- 0003: claims whose cost is bounded by the batch they take, fair across
-- jobs, and batches that travel through Google's Files API.
--
-- A claim reads no chunk text and joins nothing: it walks a job's chunks
-- from the job's claim cursor in primary-key order and packs them by their
-- stored request sizes. Texts are read later, by the batch, a page at a time.

-- No pending chunk of the job has a seq below claim_seq (a lower bound:
-- claims move it forward, a requeue moves it back to the requeued seq).
ALTER TABLE jobs ADD COLUMN claim_seq integer NOT NULL DEFAULT 0;
-- Jobs of one priority take turns: the one claimed longest ago goes next.
ALTER TABLE jobs ADD COLUMN last_claim_at timestamptz;
DROP INDEX jobs_active;
CREATE INDEX jobs_active ON jobs (priority DESC, last_claim_at NULLS FIRST, created_at)
    WHERE state IN ('pending', 'running');

-- The bytes a chunk's text and its document's title take inside a JSON
-- string, escapes included and quotes excluded (util/jsonw.h jsonw_str_len;
-- -1 for a document without a title): what a request body needs, known
-- without reading the text.
-- (Adding a column with a constant default rewrites nothing; only chunks
-- that may still be sent are measured.)
ALTER TABLE chunks ADD COLUMN text_json_len integer NOT NULL DEFAULT 0;
ALTER TABLE chunks ADD COLUMN title_json_len integer NOT NULL DEFAULT -1;
-- to_json escapes as embedd does: \" \\ \b \f \n \r \t, other control
-- characters as \u00XX.
UPDATE chunks c
   SET text_json_len = octet_length(to_json(c.text)::text) - 2,
       title_json_len = coalesce((SELECT octet_length(to_json(d.title)::text) - 2
                                    FROM documents d
                                   WHERE d.job_id = c.job_id AND d.doc_index = c.doc_index), -1)
 WHERE c.state < 2;

-- A batch's chunks in order, for reading its texts a page at a time.
DROP INDEX chunks_by_batch;
CREATE INDEX chunks_by_batch ON chunks (batch_id, seq) WHERE batch_id IS NOT NULL;

-- How a batch travels: inline JSON, a JSONL file through the Files API, or
-- the interactive batchEmbedContents.
ALTER TABLE batches ADD COLUMN transport text NOT NULL DEFAULT 'inline'
    CHECK (transport IN ('inline', 'file', 'sync'));
-- The uploaded input file ("files/..."), once its upload is complete, and
-- the results file Google wrote; both are deleted at Google after the
-- results are stored.
ALTER TABLE batches ADD COLUMN input_file text;
ALTER TABLE batches ADD COLUMN output_file text;
-- What the batch cost to handle: the claim's duration, and the bytes
-- received from Google for it (polls and downloads).
ALTER TABLE batches ADD COLUMN claim_ms integer;
ALTER TABLE batches ADD COLUMN response_bytes bigint NOT NULL DEFAULT 0;
