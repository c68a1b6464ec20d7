-- 0006: signed webhooks from a durable outbox.
--
-- A job's events (its end: job.succeeded, job.completed_with_errors,
-- job.failed, job.cancelled; and job.degraded, once, when its success rate
-- falls below its threshold) are written to webhook_deliveries by triggers on
-- jobs, so the row is committed in the very transaction that changed the job,
-- whichever code path changed it. Delivery threads in any replica claim due
-- rows (FOR UPDATE SKIP LOCKED), POST them and record every attempt.

-- A key's default webhook URL (a job's own webhook_url wins) and its signing
-- secret: sealed as service/webhook/secret.c says (AES-256-GCM under
-- --webhook-secret-key when set), never the bare hash-only kind of the key,
-- because it must sign. After a rotation the previous secret still signs
-- (a second signature) until webhook_secret_prev_until.
ALTER TABLE api_keys ADD COLUMN webhook_url text;
ALTER TABLE api_keys ADD COLUMN webhook_secret bytea;
ALTER TABLE api_keys ADD COLUMN webhook_secret_prev bytea;
ALTER TABLE api_keys ADD COLUMN webhook_secret_prev_until timestamptz;

-- A job's webhook: its own URL (NULL: the key's default, read when the event
-- happens), and the degraded threshold in force when it was created (percent
-- of finished chunks that succeeded; NULL: never degraded) with the finished
-- chunks needed first; webhook_degraded_at once job.degraded was raised.
ALTER TABLE jobs ADD COLUMN webhook_url text;
ALTER TABLE jobs ADD COLUMN webhook_degraded_below smallint
    CHECK (webhook_degraded_below BETWEEN 1 AND 100);
ALTER TABLE jobs ADD COLUMN webhook_degraded_min integer NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN webhook_degraded_at timestamptz;

-- One event to one URL. No foreign key to jobs: an event outlives the job it
-- tells of (a job deleted right after it ended is still announced). body is
-- the exact JSON sent (and signed) on every attempt; id is its webhook-id.
CREATE TABLE webhook_deliveries (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    seq             bigint GENERATED ALWAYS AS IDENTITY UNIQUE, -- event order
    job_id          uuid        NOT NULL,
    api_key_id      bigint      NOT NULL REFERENCES api_keys (id),
    event_type      text        NOT NULL,
    url             text        NOT NULL,
    body            text        NOT NULL,
    state           text        NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- when the next attempt is due; a claim moves it past the attempt's
    -- lease, so a delivery whose sender died is tried again after that
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    last_error      text
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE state = 'pending';
CREATE INDEX webhook_deliveries_by_job ON webhook_deliveries (job_id, seq);

-- Every attempt: when, how long, the HTTP status (NULL when none came) and
-- what went wrong (NULL on a 2xx).
CREATE TABLE webhook_attempts (
    delivery_id uuid        NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    n           integer     NOT NULL,
    started_at  timestamptz NOT NULL,
    duration_ms integer     NOT NULL,
    status_code integer,
    error       text,
    PRIMARY KEY (delivery_id, n)
);

-- Queue event ev of job j (as it is after the change) to the job's URL, or
-- its key's default; nothing when neither is set. The body follows the
-- Standard Webhooks shape: {"type", "timestamp", "data"}.
CREATE FUNCTION webhook_enqueue(j jobs, ev text, extra text) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    target text := j.webhook_url;
    done   bigint := j.chunks_succeeded + j.chunks_failed;
    body   text;
BEGIN
    IF target IS NULL THEN
        SELECT webhook_url INTO target FROM api_keys WHERE id = j.api_key_id;
    END IF;
    IF target IS NULL THEN
        RETURN false;
    END IF;
    body := format('{"type":%s,"timestamp":%s,"data":{"job_id":%s,"state":%s,'
                   '"display_name":%s,"collection":%s,"stats":{"documents":%s,'
                   '"chunks":{"total":%s,"pending":%s,"in_flight":%s,"succeeded":%s,'
                   '"failed":%s,"reused":%s},"success_rate":%s},"created_at":%s,'
                   '"finished_at":%s%s}}',
                   to_json(ev),
                   to_json(to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')),
                   to_json(j.id::text), to_json(j.state),
                   coalesce(to_json(j.display_name)::text, 'null'),
                   coalesce(to_json(j.collection_id::text)::text, 'null'),
                   j.documents, j.chunks_total, j.chunks_pending, j.chunks_in_flight,
                   j.chunks_succeeded, j.chunks_failed, j.chunks_reused,
                   CASE WHEN done > 0 THEN round(j.chunks_succeeded::numeric / done, 4)::float8::text
                        ELSE 'null' END,
                   to_json(to_char(j.created_at AT TIME ZONE 'UTC',
                                   'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')),
                   coalesce(to_json(to_char(j.finished_at AT TIME ZONE 'UTC',
                                            'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))::text, 'null'),
                   extra);
    INSERT INTO webhook_deliveries (job_id, api_key_id, event_type, url, body)
        VALUES (j.id, j.api_key_id, ev, target, body);
    RETURN true;
END $$;

-- A job's end: one event named after its final state.
CREATE FUNCTION webhook_job_ended() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM webhook_enqueue(NEW, 'job.' || NEW.state, '');
    RETURN NULL;
END $$;

CREATE TRIGGER jobs_webhook_ended AFTER UPDATE OF state ON jobs FOR EACH ROW
    WHEN (OLD.state IN ('pending', 'running') AND NEW.state NOT IN ('pending', 'running'))
    EXECUTE FUNCTION webhook_job_ended();

-- job.degraded: the first time a running job's finished chunks reach its
-- minimum with a success rate below its threshold (BEFORE, to mark the row
-- in the same update: at most once per job).
CREATE FUNCTION webhook_job_degraded() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    done bigint := NEW.chunks_succeeded + NEW.chunks_failed;
BEGIN
    IF done > 0 AND done >= NEW.webhook_degraded_min
       AND NEW.chunks_succeeded * 100 < NEW.webhook_degraded_below * done THEN
        NEW.webhook_degraded_at := now();
        PERFORM webhook_enqueue(NEW, 'job.degraded',
                                format(',"threshold":%s', (NEW.webhook_degraded_below / 100.0)::float8));
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER jobs_webhook_degraded BEFORE UPDATE OF chunks_failed ON jobs FOR EACH ROW
    WHEN (NEW.chunks_failed > OLD.chunks_failed AND NEW.webhook_degraded_below IS NOT NULL
          AND NEW.webhook_degraded_at IS NULL AND NEW.state IN ('pending', 'running'))
    EXECUTE FUNCTION webhook_job_degraded();
