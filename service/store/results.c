/* results.c: paging through a job's chunks and vectors (see results.h). */
#include "store/results.h"

#include "store/db.h"

#include <stdio.h>
#include <string.h>

/* A job's chunks from seq $2 on, in order, at most $3 rows; binary results,
 * so the vectors arrive as raw bytes with no hex round trip. The page is
 * taken first (the primary key, in order), then each row's document by its
 * key, in a subquery the planner keeps (OFFSET 0): a join could be planned as
 * a scan of every document of the job (a million for a large one) to serve
 * a page of 100; this costs the page, whatever the statistics. */
static const char results_sql[] = "SELECT c.seq::int8, c.doc_index, c.chunk_index, c.char_start,"
                                  " c.char_end, c.tokens, c.state::int4, d.doc_id, d.title,"
                                  " d.metadata::text, c.text, c.embedding, c.error"
                                  " FROM (SELECT * FROM chunks WHERE job_id = $1"
                                  "   AND seq >= $2::int8 ORDER BY seq LIMIT $3::int4) c"
                                  " CROSS JOIN LATERAL (SELECT doc_id, title, metadata"
                                  "   FROM documents WHERE job_id = c.job_id"
                                  "   AND doc_index = c.doc_index OFFSET 0) d"
                                  " ORDER BY c.seq";

/* A collection's current vectors: each document's current version, its
 * chunks in order, documents by id, from (doc id $2, chunk index $3) on. The
 * same columns as results_sql, then the version. Nested index lookups only
 * (the settings come with the statement in results_stream_begin_collection). */
static const char collection_sql[] =
    "SELECT c.seq::int8, c.doc_index, c.chunk_index, c.char_start, c.char_end, c.tokens,"
    " c.state::int4, cd.doc_id, d.title, cd.metadata::text, c.text, c.embedding, c.error,"
    " cd.version"
    " FROM collection_documents cd"
    " JOIN documents d ON d.job_id = cd.job_id AND d.doc_index = cd.doc_index"
    " JOIN chunks c ON c.job_id = cd.job_id AND c.seq >= d.first_seq"
    "   AND c.seq < d.first_seq + d.n_chunks"
    " WHERE cd.collection_id = $1 AND cd.version > 0"
    " AND (cd.doc_id > $2 OR (cd.doc_id = $2 AND c.chunk_index >= $3::int4))"
    " ORDER BY cd.doc_id, c.chunk_index LIMIT $4::int4";

static const char *get_text(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

static void row_from(const PGresult *res, int row, struct result_row *r)
{
    r->seq = db_bin_int(res, row, 0);
    r->doc_index = (int)db_bin_int(res, row, 1);
    r->chunk_index = (int)db_bin_int(res, row, 2);
    r->char_start = (int)db_bin_int(res, row, 3);
    r->char_end = (int)db_bin_int(res, row, 4);
    r->tokens = (int)db_bin_int(res, row, 5);
    r->state = (int)db_bin_int(res, row, 6);
    r->doc_id = PQgetvalue(res, row, 7);
    r->title = get_text(res, row, 8);
    r->metadata = get_text(res, row, 9);
    r->text = PQgetvalue(res, row, 10);
    r->text_len = (size_t)PQgetlength(res, row, 10);
    r->embedding =
        PQgetisnull(res, row, 11) ? NULL : (const unsigned char *)PQgetvalue(res, row, 11);
    r->dims = r->embedding ? PQgetlength(res, row, 11) / 4 : 0;
    r->error = get_text(res, row, 12);
    r->version = PQnfields(res) > 13 ? (int)db_bin_int(res, row, 13) : 0;
}

float results_value(const unsigned char *e, int k)
{
    const unsigned char *b = e + 4 * k;
    uint32_t u = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

/* Read and free whatever the server still sends for the current query. */
static void stream_drain(struct result_stream *s)
{
    PGresult *res;
    while (s->active && (res = PQgetResult(s->c)) != NULL)
        PQclear(res);
    s->active = false;
    if (s->in_tx) {
        PQclear(PQexec(s->c, "COMMIT"));
        s->in_tx = false;
    }
}

bool results_stream_begin(struct result_stream *s, PGconn *c, const char *job_id, int64_t from,
                          int limit, char *err, size_t errlen)
{
    char f[24], l[16];
    snprintf(f, sizeof(f), "%lld", (long long)from);
    snprintf(l, sizeof(l), "%d", limit + 1);
    const char *vals[3] = {job_id, f, l};
    memset(s, 0, sizeof(*s));
    s->c = c;
    s->limit = limit;
    s->next_seq = -1;
    if (!PQsendQueryParams(c, results_sql, 3, NULL, vals, NULL, NULL, 1)) {
        db_error(NULL, c, "could not read results", err, errlen);
        return false;
    }
    s->active = true;
    if (!PQsetSingleRowMode(c)) { /* cannot happen right after a successful send */
        stream_drain(s);
        snprintf(err, errlen, "could not read results: single-row mode refused");
        return false;
    }
    return true;
}

bool results_stream_begin_collection(struct result_stream *s, PGconn *c, const char *coll_id,
                                     const char *from_doc, int from_chunk, int limit, char *err,
                                     size_t errlen)
{
    char f[16], l[16];
    snprintf(f, sizeof(f), "%d", from_chunk);
    snprintf(l, sizeof(l), "%d", limit + 1);
    const char *vals[4] = {coll_id, from_doc, f, l};
    memset(s, 0, sizeof(*s));
    s->c = c;
    s->limit = limit;
    s->next_seq = -1;
    s->collection = true;
    /* planner settings for this statement only: a transaction of its own
     * (ended in stream_drain once the rows are read) */
    if (!db_exec(c,
                 "BEGIN READ ONLY; SET LOCAL enable_seqscan = off; SET LOCAL enable_hashjoin = off;"
                 " SET LOCAL enable_mergejoin = off",
                 err, errlen))
        return false;
    if (!PQsendQueryParams(c, collection_sql, 4, NULL, vals, NULL, NULL, 1)) {
        db_error(NULL, c, "could not read vectors", err, errlen);
        PQclear(PQexec(c, "ROLLBACK"));
        return false;
    }
    s->active = true;
    s->in_tx = true;
    if (!PQsetSingleRowMode(c)) {
        stream_drain(s);
        snprintf(err, errlen, "could not read vectors: single-row mode refused");
        return false;
    }
    return true;
}

int results_stream_next(struct result_stream *s, struct result_row *r, char *err, size_t errlen)
{
    PQclear(s->row);
    s->row = NULL;
    if (!s->active)
        return 0;
    PGresult *res = PQgetResult(s->c);
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_SINGLE_TUPLE && s->given < s->limit) {
        s->row = res;
        s->given++;
        row_from(res, 0, r);
        return 1;
    }
    int ret = 0;
    if (st == PGRES_SINGLE_TUPLE) { /* the extra row: where the next page starts */
        struct result_row extra;
        row_from(res, 0, &extra);
        s->next_seq = extra.seq;
        if (s->collection) {
            snprintf(s->next_doc, sizeof(s->next_doc), "%s", extra.doc_id);
            s->next_chunk = extra.chunk_index;
        }
    } else if (st != PGRES_TUPLES_OK) {
        db_error(res, s->c, "could not read results", err, errlen);
        ret = -1;
    }
    PQclear(res);
    stream_drain(s);
    return ret;
}

void results_stream_end(struct result_stream *s)
{
    PQclear(s->row);
    s->row = NULL;
    stream_drain(s);
}
