/* openai_batches.c: batches of the OpenAI-compatible surface (see openai_batches.h). */
#include "store/openai_batches.h"

#include "store/db.h"
#include "util/jsonw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* the batch's columns, its timestamps as Unix seconds (0 for none) */
#define EPOCH(x) "coalesce(extract(epoch FROM " x ")::bigint, 0)"
/* clang-format off */
#define TIMES                                                                                      \
    EPOCH("b.created_at") ", " EPOCH("b.in_progress_at") ", " EPOCH("b.expires_at") ", "           \
    EPOCH("b.finalizing_at") ", " EPOCH("b.completed_at") ", " EPOCH("b.failed_at") ", "           \
    EPOCH("b.expired_at") ", " EPOCH("b.cancelling_at") ", " EPOCH("b.cancelled_at")
/* clang-format on */
#define BATCH_COLS                                                                                 \
    "b.id, b.api_key_id, b.status, b.endpoint, b.completion_window, b.input_file_id,"              \
    " b.metadata::text, coalesce(b.model, ''), coalesce(b.job_id::text, ''), b.errors::text,"      \
    " coalesce(b.output_file_id, ''), coalesce(b.error_file_id, ''), b.request_total,"             \
    " b.request_completed, b.request_failed, b.tokens, " TIMES
#define N_BATCH_COLS 25

void oai_batch_free(struct oai_batch *b)
{
    free(b->metadata);
    free(b->errors);
    b->metadata = b->errors = NULL;
}

/* Row i's batch columns, which start at column o. */
struct at {
    PGresult *r;
    int i, o;
};

static void cpy(char *dst, size_t n, struct at a, int col)
{
    snprintf(dst, n, "%s", PQgetvalue(a.r, a.i, a.o + col));
}

static char *dup_or_null(struct at a, int col)
{
    return PQgetisnull(a.r, a.i, a.o + col) ? NULL : strdup(PQgetvalue(a.r, a.i, a.o + col));
}

static int64_t num(struct at a, int col)
{
    return db_int(PQgetvalue(a.r, a.i, a.o + col));
}

static void batch_row_at(PGresult *r, int i, struct oai_batch *b, int o)
{
    struct at a = {r, i, o};
    memset(b, 0, sizeof(*b));
    cpy(b->id, sizeof(b->id), a, 0);
    b->key_id = num(a, 1);
    cpy(b->status, sizeof(b->status), a, 2);
    cpy(b->endpoint, sizeof(b->endpoint), a, 3);
    cpy(b->completion_window, sizeof(b->completion_window), a, 4);
    cpy(b->input_file_id, sizeof(b->input_file_id), a, 5);
    b->metadata = dup_or_null(a, 6);
    cpy(b->model, sizeof(b->model), a, 7);
    cpy(b->job_id, sizeof(b->job_id), a, 8);
    b->errors = dup_or_null(a, 9);
    cpy(b->output_file_id, sizeof(b->output_file_id), a, 10);
    cpy(b->error_file_id, sizeof(b->error_file_id), a, 11);
    b->total = num(a, 12);
    b->completed = num(a, 13);
    b->failed = num(a, 14);
    b->tokens = num(a, 15);
    int64_t *ts[9] = {&b->created_at,    &b->in_progress_at, &b->expires_at,
                      &b->finalizing_at, &b->completed_at,   &b->failed_at,
                      &b->expired_at,    &b->cancelling_at,  &b->cancelled_at};
    for (int k = 0; k < 9; k++)
        *ts[k] = num(a, 16 + k);
}

static void batch_row(PGresult *r, int i, struct oai_batch *b)
{
    batch_row_at(r, i, b, 0);
}

/* Run a query returning batch rows; res from the row count (one expected). */
static enum jobs_result one_batch(PGresult *r, PGconn *c, const char *what, struct oai_batch *out,
                                  char *err, size_t errlen)
{
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        db_error(r, c, what, err, errlen);
        PQclear(r);
        return JOBS_ERROR;
    }
    enum jobs_result res = PQntuples(r) >= 1 ? JOBS_OK : JOBS_NOT_FOUND;
    if (res == JOBS_OK)
        batch_row(r, 0, out);
    PQclear(r);
    return res;
}

enum jobs_result oai_batch_create(PGconn *c, int64_t key_id, const char *input_file_id,
                                  const char *endpoint, const char *window, const char *metadata,
                                  struct oai_batch *out, char *err, size_t errlen)
{
    char id[OAI_ID_MAX], key[24];
    if (!oai_new_id("batch_", id)) {
        snprintf(err, errlen, "could not read random bytes");
        return JOBS_ERROR;
    }
    snprintf(key, sizeof(key), "%lld", (long long)key_id);
    const char *v[6] = {id, key, input_file_id, endpoint, window, metadata};
    PGresult *r = PQexecParams(
        c,
        "WITH b AS (INSERT INTO openai_batches (id, api_key_id, input_file_id, endpoint,"
        "   completion_window, metadata, expires_at)"
        "   SELECT $1, $2, f.id, $4, $5, $6::json, now() + interval '24 hours'"
        "   FROM openai_files f WHERE f.id = $3 AND f.api_key_id = $2 AND f.purpose = 'batch'"
        "   RETURNING *)"
        " SELECT " BATCH_COLS " FROM b",
        6, NULL, v, NULL, NULL, 0);
    return one_batch(r, c, "could not create the batch", out, err, errlen);
}

/* Request counts of a running batch, from its job's chunks. */
static bool live_counts(PGconn *c, struct oai_batch *b, char *err, size_t errlen)
{
    const char *v[2] = {b->id, b->job_id[0] ? b->job_id : NULL};
    PGresult *r = PQexecParams(
        c,
        "SELECT count(*) FILTER (WHERE l.error IS NULL AND x.ok),"
        " count(*) FILTER (WHERE l.error IS NOT NULL OR x.bad)"
        " FROM openai_batch_lines l LEFT JOIN LATERAL (SELECT bool_and(c.state = 2) AS ok,"
        "   bool_or(c.state = 3) AS bad FROM chunks c WHERE c.job_id = $2::uuid"
        "   AND c.seq >= l.first_seq AND c.seq < l.first_seq + l.n_inputs) x ON true"
        " WHERE l.batch_id = $1",
        2, NULL, v, NULL, NULL, 0);
    bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    if (ok) {
        b->completed = db_int(PQgetvalue(r, 0, 0));
        b->failed = db_int(PQgetvalue(r, 0, 1));
    } else {
        db_error(r, c, "could not count the batch's requests", err, errlen);
    }
    PQclear(r);
    return ok;
}

enum jobs_result oai_batch_get(PGconn *c, int64_t key_id, const char *id, struct oai_batch *out,
                               char *err, size_t errlen)
{
    char key[24];
    snprintf(key, sizeof(key), "%lld", (long long)key_id);
    const char *v[2] = {id, key};
    PGresult *r = PQexecParams(c,
                               "SELECT " BATCH_COLS " FROM openai_batches b"
                               " WHERE b.id = $1 AND b.api_key_id = $2",
                               2, NULL, v, NULL, NULL, 0);
    enum jobs_result res = one_batch(r, c, "could not read the batch", out, err, errlen);
    if (res == JOBS_OK &&
        (strcmp(out->status, "in_progress") == 0 || strcmp(out->status, "cancelling") == 0 ||
         strcmp(out->status, "finalizing") == 0)) {
        if (!live_counts(c, out, err, errlen)) {
            oai_batch_free(out);
            return JOBS_ERROR;
        }
    }
    return res;
}

enum jobs_result oai_batch_list(PGconn *c, int64_t key_id, const char *after, int limit,
                                struct oai_batch *out, size_t *n, bool *has_more, char *err,
                                size_t errlen)
{
    char key[24], lim[16];
    snprintf(key, sizeof(key), "%lld", (long long)key_id);
    snprintf(lim, sizeof(lim), "%d", limit + 1);
    *n = 0;
    *has_more = false;
    const char *v[3] = {key, after, lim};
    PGresult *r = PQexecParams(
        c,
        "WITH a AS (SELECT created_at, id FROM openai_batches WHERE id = $2 AND api_key_id = $1)"
        " SELECT (SELECT count(*) FROM a), " BATCH_COLS " FROM openai_batches b"
        " WHERE b.api_key_id = $1 AND ($2::text IS NULL OR (b.created_at, b.id) <"
        "   (SELECT created_at, id FROM a))"
        " ORDER BY b.created_at DESC, b.id DESC LIMIT $3",
        3, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        db_error(r, c, "could not list batches", err, errlen);
        PQclear(r);
        return JOBS_ERROR;
    }
    int rows = PQntuples(r);
    if (after && rows == 0) { /* no rows: was "after" known at all? */
        PQclear(r);
        r = PQexecParams(c, "SELECT 1 FROM openai_batches WHERE id = $2 AND api_key_id = $1", 2,
                         NULL, v, NULL, NULL, 0);
        bool ok = PQresultStatus(r) == PGRES_TUPLES_OK, known = ok && PQntuples(r) == 1;
        if (!ok)
            db_error(r, c, "could not list batches", err, errlen);
        PQclear(r);
        return !ok ? JOBS_ERROR : known ? JOBS_OK : JOBS_NOT_FOUND;
    }
    if (after && db_int(PQgetvalue(r, 0, 0)) == 0) {
        PQclear(r);
        return JOBS_NOT_FOUND;
    }
    *has_more = rows > limit;
    for (int i = 0; i < rows && i < limit; i++) {
        batch_row_at(r, i, &out[(*n)++], 1);
    }
    PQclear(r);
    return JOBS_OK;
}

enum jobs_result oai_batch_cancel(PGconn *c, int64_t key_id, const char *id, struct oai_batch *out,
                                  char *err, size_t errlen)
{
    char key[24];
    snprintf(key, sizeof(key), "%lld", (long long)key_id);
    const char *v[2] = {id, key};
    /* one statement: a validating batch ends now (the driver's start checks
     * the status), a running one waits for the driver to write its output */
    PGresult *r = PQexecParams(
        c,
        "WITH o AS (SELECT id, status FROM openai_batches WHERE id = $1 AND api_key_id = $2"
        "   FOR UPDATE),"
        " u AS (UPDATE openai_batches b SET"
        "   status = CASE o.status WHEN 'validating' THEN 'cancelled' ELSE 'cancelling' END,"
        "   cancelling_at = now(),"
        "   cancelled_at = CASE o.status WHEN 'validating' THEN now() END"
        "   FROM o WHERE b.id = o.id AND o.status IN ('validating', 'in_progress') RETURNING b.*)"
        " SELECT (SELECT count(*) FROM u), " BATCH_COLS " FROM u b"
        " UNION ALL SELECT 0, " BATCH_COLS " FROM openai_batches b"
        "   WHERE b.id = $1 AND b.api_key_id = $2 AND NOT EXISTS (SELECT 1 FROM u)",
        2, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        db_error(r, c, "could not cancel the batch", err, errlen);
        PQclear(r);
        return JOBS_ERROR;
    }
    if (PQntuples(r) == 0) {
        PQclear(r);
        return JOBS_NOT_FOUND;
    }
    bool changed = db_int(PQgetvalue(r, 0, 0)) > 0;
    batch_row_at(r, 0, out, 1);
    PQclear(r);
    if (!changed)
        return strcmp(out->status, "cancelling") == 0 ? JOBS_OK : JOBS_CONFLICT;
    /* the job stops: pending texts are never sent (in-flight Google batches
     * are cancelled by the workers) */
    if (out->job_id[0] && jobs_cancel(c, key_id, out->job_id, err, errlen) == JOBS_ERROR) {
        oai_batch_free(out);
        return JOBS_ERROR;
    }
    return JOBS_OK;
}

/* ---- the driver's steps ---- */

bool oai_batch_claim(PGconn *c, const char *owner, int64_t lease_ms, struct oai_batch *out,
                     enum oai_work *work, char *err, size_t errlen)
{
    *work = OAI_WORK_NONE;
    char lease[24];
    snprintf(lease, sizeof(lease), "%lld", (long long)lease_ms);
    const char *v[2] = {owner, lease};
    PGresult *r = PQexecParams(
        c,
        "WITH o AS (SELECT o.id, o.status, (o.status = 'in_progress' AND o.expires_at < now())"
        "     AS expiring FROM openai_batches o"
        "   WHERE o.status IN ('validating', 'in_progress', 'finalizing', 'cancelling')"
        "   AND (o.lease_until IS NULL OR o.lease_until < now())"
        "   AND (o.status IN ('validating', 'finalizing', 'cancelling') OR o.job_id IS NULL"
        "     OR o.expires_at < now() OR EXISTS (SELECT 1 FROM jobs j WHERE j.id = o.job_id"
        "       AND j.state NOT IN ('pending', 'running')))"
        "   ORDER BY o.created_at LIMIT 1 FOR UPDATE SKIP LOCKED)"
        " UPDATE openai_batches b SET lease_owner = $1,"
        "   lease_until = now() + $2::bigint * interval '1 millisecond',"
        "   status = CASE WHEN o.status = 'in_progress' AND NOT o.expiring THEN 'finalizing'"
        "     ELSE b.status END,"
        "   finalizing_at = CASE WHEN o.status = 'in_progress' AND NOT o.expiring THEN now()"
        "     ELSE b.finalizing_at END,"
        "   expired_at = CASE WHEN o.expiring THEN coalesce(b.expired_at, now())"
        "     ELSE b.expired_at END"
        " FROM o WHERE b.id = o.id RETURNING " BATCH_COLS,
        2, NULL, v, NULL, NULL, 0);
    enum jobs_result res = one_batch(r, c, "could not claim a batch", out, err, errlen);
    if (res == JOBS_ERROR)
        return false;
    if (res == JOBS_NOT_FOUND)
        return true;
    *work = strcmp(out->status, "validating") == 0 ? OAI_WORK_VALIDATE : OAI_WORK_FINALIZE;
    /* an expired or cancelled batch's job stops before its output is written */
    if ((out->expired_at || strcmp(out->status, "cancelling") == 0) && out->job_id[0] &&
        jobs_cancel(c, out->key_id, out->job_id, err, errlen) == JOBS_ERROR) {
        oai_batch_release(c, out->id, owner);
        oai_batch_free(out);
        *work = OAI_WORK_NONE;
        return false;
    }
    return true;
}

void oai_batch_release(PGconn *c, const char *id, const char *owner)
{
    const char *v[2] = {id, owner};
    PGresult *r = PQexecParams(c,
                               "UPDATE openai_batches SET lease_owner = NULL, lease_until = NULL"
                               " WHERE id = $1 AND lease_owner = $2",
                               2, NULL, v, NULL, NULL, 0);
    PQclear(r);
}

bool oai_batch_fail(PGconn *c, const char *id, const char *owner, const char *errors_json,
                    char *err, size_t errlen)
{
    const char *v[3] = {id, owner, errors_json};
    PGresult *r = PQexecParams(c,
                               "UPDATE openai_batches SET status = 'failed', failed_at = now(),"
                               " errors = $3::json, lease_owner = NULL, lease_until = NULL"
                               " WHERE id = $1 AND lease_owner = $2 AND status = 'validating'",
                               3, NULL, v, NULL, NULL, 0);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        db_error(r, c, "could not mark the batch failed", err, errlen);
    PQclear(r);
    return ok;
}

/* A COPY text field: \, newline, CR and tab escaped. */
static bool copy_field(struct buf *b, const char *s)
{
    for (; *s; s++) {
        const char *e = *s == '\\'   ? "\\\\"
                        : *s == '\n' ? "\\n"
                        : *s == '\r' ? "\\r"
                        : *s == '\t' ? "\\t"
                                     : NULL;
        if (!(e ? buf_puts(b, e) : buf_putc(b, *s)))
            return false;
    }
    return true;
}

bool oai_line_row(struct buf *rows, const char *batch_id, int64_t line, const char *custom_id,
                  const char *model, bool base64, int64_t first_seq, int64_t n_inputs,
                  const char *error_json)
{
    bool ok = buf_printf(rows, "%s\t%lld\t", batch_id, (long long)line) &&
              copy_field(rows, custom_id) && buf_putc(rows, '\t') && copy_field(rows, model) &&
              buf_printf(rows, "\t%s\t", base64 ? "t" : "f");
    ok = ok &&
         (first_seq < 0 ? buf_puts(rows, "\\N") : buf_printf(rows, "%lld", (long long)first_seq));
    ok = ok && buf_printf(rows, "\t%lld\t", (long long)n_inputs);
    ok = ok && (error_json ? copy_field(rows, error_json) : buf_puts(rows, "\\N"));
    return ok && buf_putc(rows, '\n');
}

bool oai_batch_start(PGconn *c, const char *id, const char *owner, const struct buf *rows,
                     const char *job_id, const char *model, int64_t total, bool *ours, char *err,
                     size_t errlen)
{
    *ours = false;
    PGresult *r = PQexec(c, "COPY openai_batch_lines (batch_id, line, custom_id, model, base64,"
                            " first_seq, n_inputs, error) FROM STDIN");
    bool ok = PQresultStatus(r) == PGRES_COPY_IN;
    if (!ok)
        db_error(r, c, "could not store the batch's lines", err, errlen);
    PQclear(r);
    if (!ok)
        return false;
    for (size_t off = 0; ok && off < rows->len; off += (1u << 20)) {
        size_t n = rows->len - off < (1u << 20) ? rows->len - off : (1u << 20);
        ok = PQputCopyData(c, rows->data + off, (int)n) == 1;
    }
    ok = PQputCopyEnd(c, ok ? NULL : "aborted by embedd") == 1 && ok;
    bool reported = false;
    while ((r = PQgetResult(c))) {
        if (PQresultStatus(r) != PGRES_COMMAND_OK && !reported) {
            db_error(r, c, "could not store the batch's lines", err, errlen);
            reported = true;
            ok = false;
        }
        PQclear(r);
    }
    if (!ok) {
        if (!reported)
            db_error(NULL, c, "could not store the batch's lines", err, errlen);
        return false;
    }
    char tot[24];
    snprintf(tot, sizeof(tot), "%lld", (long long)total);
    const char *v[5] = {id, owner, job_id, model, tot};
    r = PQexecParams(c,
                     "UPDATE openai_batches SET status = 'in_progress', in_progress_at = now(),"
                     " job_id = $3::uuid, model = $4, request_total = $5,"
                     " lease_owner = NULL, lease_until = NULL"
                     " WHERE id = $1 AND lease_owner = $2 AND status = 'validating'",
                     5, NULL, v, NULL, NULL, 0);
    ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        db_error(r, c, "could not start the batch", err, errlen);
    else
        *ours = db_int(PQcmdTuples(r)) == 1;
    PQclear(r);
    return ok;
}

#define LINES_PAGE "200"

/* sum(int4) is bigint: its binary form is 8 bytes. */
static int64_t bin_numeric_or_int(const PGresult *r, int i, int col)
{
    return db_bin_int(r, i, col);
}

bool oai_lines_open(struct oai_line_cursor *k, PGconn *c, const char *batch_id, const char *job_id,
                    char *err, size_t errlen)
{
    memset(k, 0, sizeof(*k));
    k->c = c;
    const char *v[2] = {batch_id, job_id && *job_id ? job_id : NULL};
    PGresult *r = PQexecParams(
        c,
        "DECLARE oai_lines NO SCROLL CURSOR FOR"
        " SELECT l.line, l.custom_id, l.model, l.error::text, l.base64, l.n_inputs,"
        "   c.seq, c.state, c.embedding,"
        "   coalesce(bool_and(c.state = 2) OVER w, false), count(c.seq) OVER w,"
        "   coalesce(sum(coalesce(c.google_tokens, c.tokens)) OVER w, 0),"
        "   min(c.error) FILTER (WHERE c.state = 3 AND c.error <> 'cancelled') OVER w"
        " FROM openai_batch_lines l LEFT JOIN chunks c ON c.job_id = $2::uuid"
        "   AND c.seq >= l.first_seq AND c.seq < l.first_seq + l.n_inputs"
        " WHERE l.batch_id = $1 WINDOW w AS (PARTITION BY l.line) ORDER BY l.line, c.seq",
        2, NULL, v, NULL, NULL, 1);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        db_error(r, c, "could not read the batch's lines", err, errlen);
    PQclear(r);
    k->open = ok;
    return ok;
}

int oai_lines_next(struct oai_line_cursor *k, struct oai_line_row *out, char *err, size_t errlen)
{
    if (k->end)
        return 0;
    if (!k->page || k->row >= k->rows) {
        PQclear(k->page);
        k->page =
            PQexecParams(k->c, "FETCH " LINES_PAGE " FROM oai_lines", 0, NULL, NULL, NULL, NULL, 1);
        if (PQresultStatus(k->page) != PGRES_TUPLES_OK) {
            db_error(k->page, k->c, "could not read the batch's lines", err, errlen);
            PQclear(k->page);
            k->page = NULL;
            return -1;
        }
        k->row = 0;
        k->rows = PQntuples(k->page);
        if (k->rows == 0) {
            k->end = true;
            return 0;
        }
    }
    PGresult *r = k->page;
    int i = k->row++;
    memset(out, 0, sizeof(*out));
    out->line = db_bin_int(r, i, 0);
    out->custom_id = PQgetvalue(r, i, 1);
    out->model = PQgetvalue(r, i, 2);
    out->error = PQgetisnull(r, i, 3) ? NULL : PQgetvalue(r, i, 3);
    out->base64 = PQgetvalue(r, i, 4)[0] != 0;
    out->n_inputs = db_bin_int(r, i, 5);
    out->has_chunk = !PQgetisnull(r, i, 6);
    if (out->has_chunk) {
        out->seq = db_bin_int(r, i, 6);
        out->state = (int)db_bin_int(r, i, 7);
        if (!PQgetisnull(r, i, 8)) {
            out->embedding = (const unsigned char *)PQgetvalue(r, i, 8);
            out->embedding_len = (size_t)PQgetlength(r, i, 8);
        }
    }
    out->line_ok = PQgetvalue(r, i, 9)[0] != 0;
    out->line_chunks = db_bin_int(r, i, 10);
    out->line_tokens = bin_numeric_or_int(r, i, 11);
    out->line_failure = PQgetisnull(r, i, 12) ? NULL : PQgetvalue(r, i, 12);
    return 1;
}

void oai_lines_close(struct oai_line_cursor *k)
{
    PQclear(k->page);
    k->page = NULL;
    if (k->open) {
        PGresult *r = PQexec(k->c, "CLOSE oai_lines");
        PQclear(r);
    }
    k->open = false;
}

bool oai_batch_finish(PGconn *c, const char *id, const char *owner, const char *output_file_id,
                      const char *error_file_id, int64_t completed, int64_t failed, int64_t tokens,
                      bool *ours, char *err, size_t errlen)
{
    char done[24], bad[24], tok[24];
    snprintf(done, sizeof(done), "%lld", (long long)completed);
    snprintf(bad, sizeof(bad), "%lld", (long long)failed);
    snprintf(tok, sizeof(tok), "%lld", (long long)tokens);
    const char *v[7] = {id, owner, output_file_id, error_file_id, done, bad, tok};
    PGresult *r = PQexecParams(
        c,
        "UPDATE openai_batches SET"
        " status = CASE WHEN status = 'cancelling' THEN 'cancelled'"
        "   WHEN expired_at IS NOT NULL THEN 'expired' ELSE 'completed' END,"
        " completed_at = CASE WHEN status = 'finalizing' AND expired_at IS NULL THEN now() END,"
        " cancelled_at = CASE WHEN status = 'cancelling' THEN now() END,"
        " expired_at = CASE WHEN status = 'cancelling' THEN NULL ELSE expired_at END,"
        " output_file_id = $3, error_file_id = $4, request_completed = $5,"
        " request_failed = $6, tokens = $7, lease_owner = NULL, lease_until = NULL"
        " WHERE id = $1 AND lease_owner = $2",
        7, NULL, v, NULL, NULL, 0);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        db_error(r, c, "could not finish the batch", err, errlen);
    else
        *ours = db_int(PQcmdTuples(r)) == 1;
    PQclear(r);
    return ok;
}
