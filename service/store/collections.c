/* collections.c: collections and their documents in PostgreSQL (see collections.h). */
#include "store/collections.h"

#include "store/db.h"
#include "util/crypto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* RFC 3339 with microseconds, as jobs are shown */
#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

#define COLL_COLUMNS                                                                               \
    "c.id, c.name, c.model, c.output_dimensionality, c.task_type, c.query_task_type,"              \
    " c.normalize, c.max_chars, c.overlap_chars, c.version, c.documents, " TS(                     \
        "c.created_at") ","                                                                        \
                        " (extract(epoch FROM c.created_at) * 1000000)::bigint,"                   \
                        " (SELECT count(*) FROM collection_documents cd WHERE cd.collection_id = " \
                        "c.id"                                                                     \
                        "   AND cd.next_job_id IS NOT NULL),"                                      \
                        " j.n, j.active, j.tb, j.ti, j.tr, j.te, j.cr"
#define COLL_FROM                                                                                  \
    " FROM collections c CROSS JOIN LATERAL (SELECT count(*) AS n,"                                \
    "   count(*) FILTER (WHERE state IN ('pending', 'running')) AS active,"                        \
    "   coalesce(sum(tokens_batch), 0) AS tb, coalesce(sum(tokens_interactive), 0) AS ti,"         \
    "   coalesce(sum(tokens_reused), 0) AS tr, coalesce(sum(tokens_estimated), 0) AS te,"          \
    "   coalesce(sum(chunks_reused), 0) AS cr FROM jobs WHERE jobs.collection_id = c.id) j"

static void copy_col(const PGresult *r, int i, int col, char *out, size_t n)
{
    snprintf(out, n, "%s", PQgetisnull(r, i, col) ? "" : PQgetvalue(r, i, col));
}

/* Row i of a COLL_COLUMNS result; *created_us gets created_at. */
static void read_coll(const PGresult *r, int i, struct coll_row *o, int64_t *created_us)
{
    memset(o, 0, sizeof(*o));
    copy_col(r, i, 0, o->id, sizeof(o->id));
    copy_col(r, i, 1, o->name, sizeof(o->name));
    copy_col(r, i, 2, o->model, sizeof(o->model));
    o->output_dimensionality = (int)db_int(PQgetvalue(r, i, 3));
    copy_col(r, i, 4, o->task_type, sizeof(o->task_type));
    copy_col(r, i, 5, o->query_task_type, sizeof(o->query_task_type));
    o->normalize = PQgetvalue(r, i, 6)[0] == 't';
    o->max_chars = (int)db_int(PQgetvalue(r, i, 7));
    o->overlap_chars = (int)db_int(PQgetvalue(r, i, 8));
    o->version = db_int(PQgetvalue(r, i, 9));
    o->documents = db_int(PQgetvalue(r, i, 10));
    copy_col(r, i, 11, o->created_at, sizeof(o->created_at));
    if (created_us)
        *created_us = db_int(PQgetvalue(r, i, 12));
    o->documents_updating = db_int(PQgetvalue(r, i, 13));
    o->jobs = db_int(PQgetvalue(r, i, 14));
    o->jobs_active = db_int(PQgetvalue(r, i, 15));
    o->tokens_batch = db_int(PQgetvalue(r, i, 16));
    o->tokens_interactive = db_int(PQgetvalue(r, i, 17));
    o->tokens_reused = db_int(PQgetvalue(r, i, 18));
    o->tokens_estimated = db_int(PQgetvalue(r, i, 19));
    o->chunks_reused = db_int(PQgetvalue(r, i, 20));
}

enum jobs_result coll_create(PGconn *c, const struct coll_spec *s, char id_out[JOB_ID_LEN + 1],
                             char *err, size_t errlen)
{
    char key[24], dims[16], maxc[16], ovl[16];
    if (!uuid_v4(id_out)) {
        snprintf(err, errlen, "could not read random bytes");
        return JOBS_ERROR;
    }
    snprintf(key, sizeof(key), "%lld", (long long)s->key_id);
    snprintf(dims, sizeof(dims), "%d", s->output_dimensionality);
    snprintf(maxc, sizeof(maxc), "%d", s->max_chars);
    snprintf(ovl, sizeof(ovl), "%d", s->overlap_chars);
    const char *v[10] = {id_out,
                         key,
                         s->name,
                         s->model,
                         dims,
                         s->task_type,
                         s->query_task_type,
                         s->normalize ? "t" : "f",
                         maxc,
                         ovl};
    PGresult *r = PQexecParams(c,
                               "INSERT INTO collections (id, api_key_id, name, model,"
                               " output_dimensionality, task_type, query_task_type, normalize,"
                               " max_chars, overlap_chars)"
                               " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
                               " ON CONFLICT (api_key_id, name) DO NOTHING",
                               10, NULL, v, NULL, NULL, 0);
    enum jobs_result res = JOBS_OK;
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        db_error(r, c, "could not store the collection", err, errlen);
        res = JOBS_ERROR;
    } else if (db_int(PQcmdTuples(r)) == 0) {
        res = JOBS_CONFLICT;
    }
    PQclear(r);
    return res;
}

enum jobs_result coll_get(PGconn *c, int64_t key_id, const char *id, struct coll_row *out,
                          char *err, size_t errlen)
{
    if (!jobs_valid_id(id))
        return JOBS_NOT_FOUND;
    char key[24];
    snprintf(key, sizeof(key), "%lld", (long long)key_id);
    const char *v[2] = {id, key};
    PGresult *r =
        PQexecParams(c, "SELECT " COLL_COLUMNS COLL_FROM " WHERE c.id = $1 AND c.api_key_id = $2",
                     2, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        db_error(r, c, "could not read the collection", err, errlen);
        PQclear(r);
        return JOBS_ERROR;
    }
    enum jobs_result res = PQntuples(r) == 1 ? JOBS_OK : JOBS_NOT_FOUND;
    if (res == JOBS_OK)
        read_coll(r, 0, out, NULL);
    PQclear(r);
    return res;
}

enum jobs_result coll_list(PGconn *c, int64_t key_id, const char *cursor, int limit,
                           struct coll_row *out, size_t *n, char *next_cursor, size_t cursor_len,
                           char *err, size_t errlen)
{
    char key[24], lim[16], us[24] = "", cid[JOB_ID_LEN + 1] = "";
    *n = 0;
    next_cursor[0] = '\0';
    if (cursor && *cursor) {
        const char *dot = strchr(cursor, '.');
        char *end;
        long long v = dot ? strtoll(cursor, &end, 10) : 0;
        if (!dot || end != dot || v <= 0 || !jobs_valid_id(dot + 1))
            return JOBS_CONFLICT;
        snprintf(us, sizeof(us), "%lld", v);
        snprintf(cid, sizeof(cid), "%s", dot + 1);
    }
    snprintf(key, sizeof(key), "%lld", (long long)key_id);
    snprintf(lim, sizeof(lim), "%d", limit + 1);
    const char *v[4] = {key, us[0] ? us : NULL, cid[0] ? cid : NULL, lim};
    PGresult *r = PQexecParams(
        c,
        "SELECT " COLL_COLUMNS COLL_FROM " WHERE c.api_key_id = $1"
        " AND ($2::bigint IS NULL OR (c.created_at, c.id) <"
        "      ('epoch'::timestamptz + $2::bigint * interval '1 microsecond', $3::uuid))"
        " ORDER BY c.created_at DESC, c.id DESC LIMIT $4",
        4, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        db_error(r, c, "could not list collections", err, errlen);
        PQclear(r);
        return JOBS_ERROR;
    }
    int rows = PQntuples(r);
    int64_t created_us = 0;
    for (int i = 0; i < rows && i < limit; i++)
        read_coll(r, i, &out[(*n)++], &created_us);
    if (rows > limit)
        snprintf(next_cursor, cursor_len, "%lld.%s", (long long)created_us, out[*n - 1].id);
    PQclear(r);
    return JOBS_OK;
}

enum jobs_result coll_delete(PGconn *c, int64_t key_id, const char *id, char *err, size_t errlen)
{
    if (!jobs_valid_id(id))
        return JOBS_NOT_FOUND;
    char key[24];
    snprintf(key, sizeof(key), "%lld", (long long)key_id);
    const char *v[2] = {id, key};
    /* One statement: lock the collection, cancel its active jobs as
     * jobs_cancel does (pending chunks fail, counters move; their batches
     * at Google are cancelled by the workers), then delete it. */
    PGresult *r = PQexecParams(
        c,
        "WITH col AS (SELECT id FROM collections WHERE id = $1 AND api_key_id = $2 FOR UPDATE),"
        " j AS (SELECT id FROM jobs WHERE collection_id = (SELECT id FROM col)"
        "   AND state IN ('pending', 'running') FOR UPDATE),"
        " dropped AS (UPDATE chunks SET state = 3, error = 'cancelled'"
        "   WHERE job_id IN (SELECT id FROM j) AND state = 0 RETURNING job_id),"
        " n AS (SELECT job_id, count(*) AS k FROM dropped GROUP BY job_id),"
        " upd AS (UPDATE jobs SET state = 'cancelled', finished_at = now(),"
        "   last_activity_at = now(),"
        "   chunks_failed = chunks_failed + coalesce((SELECT k FROM n WHERE n.job_id = jobs.id), "
        "0),"
        "   chunks_pending = chunks_pending - coalesce((SELECT k FROM n WHERE n.job_id = jobs.id), "
        "0)"
        "   WHERE id IN (SELECT id FROM j) RETURNING 1),"
        " del AS (DELETE FROM collections WHERE id = (SELECT id FROM col) RETURNING 1)"
        " SELECT (SELECT count(*) FROM del), (SELECT count(*) FROM upd)",
        2, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        db_error(r, c, "could not delete the collection", err, errlen);
        PQclear(r);
        return JOBS_ERROR;
    }
    enum jobs_result res = db_int(PQgetvalue(r, 0, 0)) == 1 ? JOBS_OK : JOBS_NOT_FOUND;
    PQclear(r);
    return res;
}

void coll_doc_row_free(struct coll_doc_row *d)
{
    free(d->metadata);
    free(d->title);
    free(d->error);
    d->metadata = d->title = d->error = NULL;
}

#define DOC_COLUMNS                                                                                \
    "cd.doc_id, cd.version, coalesce(cd.job_id::text, ''), coalesce(cd.next_job_id::text, ''),"    \
    " cd.metadata::text, d.title, cd.error, coalesce(d.n_chunks, 0), " TS("cd.updated_at")
#define DOC_FROM                                                                                   \
    " FROM collection_documents cd JOIN collections c ON c.id = cd.collection_id"                  \
    " LEFT JOIN documents d ON d.job_id = cd.job_id AND d.doc_index = cd.doc_index"

static char *dup_col(const PGresult *r, int i, int col)
{
    return PQgetisnull(r, i, col) ? NULL : strdup(PQgetvalue(r, i, col));
}

static void read_doc(const PGresult *r, int i, struct coll_doc_row *o)
{
    memset(o, 0, sizeof(*o));
    copy_col(r, i, 0, o->doc_id, sizeof(o->doc_id));
    o->version = (int)db_int(PQgetvalue(r, i, 1));
    copy_col(r, i, 2, o->job_id, sizeof(o->job_id));
    copy_col(r, i, 3, o->next_job_id, sizeof(o->next_job_id));
    o->metadata = dup_col(r, i, 4);
    o->title = dup_col(r, i, 5);
    o->error = dup_col(r, i, 6);
    o->chunks = (int)db_int(PQgetvalue(r, i, 7));
    copy_col(r, i, 8, o->updated_at, sizeof(o->updated_at));
    snprintf(o->state, sizeof(o->state), "%s",
             o->next_job_id[0] ? "updating"
             : o->error        ? "failed"
                               : "current");
}

/* Whether the collection exists for the key: JOBS_OK, JOBS_NOT_FOUND or JOBS_ERROR. */
static enum jobs_result coll_owned(PGconn *c, const char *key, const char *coll_id, char *err,
                                   size_t errlen)
{
    if (!jobs_valid_id(coll_id))
        return JOBS_NOT_FOUND;
    const char *v[2] = {coll_id, key};
    PGresult *r = PQexecParams(c, "SELECT 1 FROM collections WHERE id = $1 AND api_key_id = $2", 2,
                               NULL, v, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        db_error(r, c, "could not read the collection", err, errlen);
        PQclear(r);
        return JOBS_ERROR;
    }
    enum jobs_result res = PQntuples(r) == 1 ? JOBS_OK : JOBS_NOT_FOUND;
    PQclear(r);
    return res;
}

enum jobs_result coll_docs_list(PGconn *c, int64_t key_id, const char *coll_id, const char *after,
                                int limit, struct coll_doc_row *out, size_t *n, bool *more,
                                char *err, size_t errlen)
{
    char key[24], lim[16];
    *n = 0;
    *more = false;
    snprintf(key, sizeof(key), "%lld", (long long)key_id);
    enum jobs_result res = coll_owned(c, key, coll_id, err, errlen);
    if (res != JOBS_OK)
        return res;
    snprintf(lim, sizeof(lim), "%d", limit + 1);
    const char *v[4] = {coll_id, key, after, lim};
    PGresult *r = PQexecParams(c,
                               "SELECT " DOC_COLUMNS DOC_FROM
                               " WHERE cd.collection_id = $1 AND c.api_key_id = $2"
                               " AND ($3::text IS NULL OR cd.doc_id > $3)"
                               " ORDER BY cd.doc_id LIMIT $4",
                               4, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        db_error(r, c, "could not list documents", err, errlen);
        PQclear(r);
        return JOBS_ERROR;
    }
    int rows = PQntuples(r);
    for (int i = 0; i < rows && i < limit; i++)
        read_doc(r, i, &out[(*n)++]);
    *more = rows > limit;
    PQclear(r);
    return JOBS_OK;
}

enum jobs_result coll_doc_get(PGconn *c, int64_t key_id, const char *coll_id, const char *doc_id,
                              struct coll_doc_row *out, char *err, size_t errlen)
{
    char key[24];
    snprintf(key, sizeof(key), "%lld", (long long)key_id);
    if (!jobs_valid_id(coll_id))
        return JOBS_NOT_FOUND;
    const char *v[3] = {coll_id, key, doc_id};
    PGresult *r = PQexecParams(c,
                               "SELECT " DOC_COLUMNS DOC_FROM
                               " WHERE cd.collection_id = $1 AND c.api_key_id = $2"
                               " AND cd.doc_id = $3",
                               3, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        db_error(r, c, "could not read the document", err, errlen);
        PQclear(r);
        return JOBS_ERROR;
    }
    enum jobs_result res = PQntuples(r) == 1 ? JOBS_OK : JOBS_NOT_FOUND;
    if (res == JOBS_OK)
        read_doc(r, 0, out);
    PQclear(r);
    return res;
}

enum jobs_result coll_doc_delete(PGconn *c, int64_t key_id, const char *coll_id, const char *doc_id,
                                 char *err, size_t errlen)
{
    char key[24];
    snprintf(key, sizeof(key), "%lld", (long long)key_id);
    if (!jobs_valid_id(coll_id))
        return JOBS_NOT_FOUND;
    const char *v[3] = {coll_id, key, doc_id};
    PGresult *r = PQexecParams(
        c,
        "WITH d AS (DELETE FROM collection_documents cd USING collections c"
        "   WHERE cd.collection_id = $1 AND c.id = cd.collection_id AND c.api_key_id = $2"
        "   AND cd.doc_id = $3 RETURNING cd.version),"
        " u AS (UPDATE collections SET version = version + 1,"
        "   documents = documents - (SELECT count(*) FROM d WHERE version > 0)"
        "   WHERE id = $1 AND EXISTS (SELECT 1 FROM d) RETURNING 1)"
        " SELECT (SELECT count(*) FROM d), (SELECT count(*) FROM u)",
        3, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        db_error(r, c, "could not delete the document", err, errlen);
        PQclear(r);
        return JOBS_ERROR;
    }
    enum jobs_result res = db_int(PQgetvalue(r, 0, 0)) == 1 ? JOBS_OK : JOBS_NOT_FOUND;
    PQclear(r);
    return res;
}

/* The new versions of job $1 named by the int[] $2, as ctids: one probe of
 * collection_documents_next per index, in a subquery the planner may not
 * flatten. "next_doc_index = ANY($2)" was a filter over every new version of
 * the job, for each batch slice stored: a 1,000,000-document upsert spent
 * 0.3 to 0.5 s in each of its thousand flips. */
#define NEXT_ROWS                                                                                  \
    "SELECT k.tid FROM unnest($2::int[]) AS u(i) CROSS JOIN LATERAL (SELECT cd.ctid AS tid"        \
    " FROM collection_documents cd WHERE cd.next_job_id = $1 AND cd.next_doc_index = u.i"          \
    " OFFSET 0) k"
#define FLIP_SET                                                                                   \
    " SET version = cd.version + 1,"                                                               \
    "   job_id = cd.next_job_id, doc_index = cd.next_doc_index,"                                   \
    "   content_sha256 = cd.next_content_sha256,"                                                  \
    "   metadata = (SELECT d.metadata FROM documents d"                                            \
    "     WHERE d.job_id = $1 AND d.doc_index = cd.next_doc_index),"                               \
    "   next_job_id = NULL, next_doc_index = NULL, next_content_sha256 = NULL, error = NULL,"      \
    "   updated_at = now()"
#define FLIP_READY                                                                                 \
    " AND (SELECT d.chunks_done = d.n_chunks FROM documents d"                                     \
    "   WHERE d.job_id = $1 AND d.doc_index = cd.next_doc_index)"                                  \
    " RETURNING cd.collection_id, cd.version)"                                                     \
    " UPDATE collections c SET version = c.version + 1,"                                           \
    "   documents = c.documents + (SELECT count(*) FROM f WHERE f.version = 1)"                    \
    " WHERE c.id IN (SELECT collection_id FROM f)"

/* Each document's row of the job is read by a correlated subquery (one probe
 * of documents' primary key per document), never joined: the planner takes a
 * job it has not analysed for one row long, and its nested loop over two such
 * "one-row" sides was quadratic (27 s for 10,000 documents). */
bool coll_flip(PGconn *c, const char *job_id, const char *doc_indexes, char *err, size_t errlen)
{
    const char *v[2] = {job_id, doc_indexes};
    PGresult *r =
        PQexecParams(c,
                     doc_indexes ? "WITH t AS (" NEXT_ROWS "),"
                                   " f AS (UPDATE collection_documents cd" FLIP_SET " FROM t"
                                   " WHERE cd.ctid = t.tid AND cd.next_job_id = $1" FLIP_READY
                                 : "WITH f AS (UPDATE collection_documents cd" FLIP_SET
                                   " WHERE cd.next_job_id = $1 AND $2::int[] IS NULL" FLIP_READY,
                     2, NULL, v, NULL, NULL, 0);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        db_error(r, c, "could not make new document versions current", err, errlen);
    PQclear(r);
    return ok;
}

bool coll_fail_versions(PGconn *c, const char *job_id, const char *doc_indexes, const char *reason,
                        char *err, size_t errlen)
{
    const char *v[3] = {job_id, doc_indexes, reason};
    PGresult *r = PQexecParams(c,
                               doc_indexes ? "UPDATE collection_documents SET next_job_id = NULL,"
                                             " next_doc_index = NULL, next_content_sha256 = NULL,"
                                             " error = $3, updated_at = now()"
                                             " FROM (" NEXT_ROWS ") t"
                                             " WHERE collection_documents.ctid = t.tid"
                                             " AND collection_documents.next_job_id = $1"
                                           : "UPDATE collection_documents SET next_job_id = NULL,"
                                             " next_doc_index = NULL, next_content_sha256 = NULL,"
                                             " error = $3, updated_at = now()"
                                             " WHERE next_job_id = $1 AND $2::int[] IS NULL",
                               3, NULL, v, NULL, NULL, 0);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        db_error(r, c, "could not record failed document versions", err, errlen);
    PQclear(r);
    return ok;
}
