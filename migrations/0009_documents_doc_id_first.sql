-- 0009: the unique index on a job's document ids leads with doc_id.
--
-- Lookups of a document by (job_id, doc_index) -- storing results, flipping
-- collection versions, titles for a batch -- must use the primary key. With
-- UNIQUE (job_id, doc_id) beside it, the planner, which takes a job it has not
-- analysed yet for one row long, sometimes read the job's documents through
-- that index with doc_index as a filter: a scan of the whole job for every
-- document (a 30,000-document collection job spent 9.5 s in one version flip
-- and 5 s in one results store). With doc_id first, that index cannot serve a
-- job_id-only condition, and lookups by (job_id, doc_id) use it as before.
-- Building it reads the documents table once (seconds per million rows).
ALTER TABLE documents ADD CONSTRAINT documents_doc_id_job_id_key UNIQUE (doc_id, job_id);
ALTER TABLE documents DROP CONSTRAINT documents_job_id_doc_id_key;
