/* load.c: a collection's current chunks read from PostgreSQL for search (see load.h). */
#include "search/load.h"

#include "search/search.h"
#include "store/db.h"
#include "store/jobs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Index lookups only: with the defaults, a collection holding most of the
 * chunks table could be planned as a hash join over all of it. */
const char *const load_begin_sql =
    "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL enable_seqscan = off;"
    " SET LOCAL enable_bitmapscan = off; SET LOCAL enable_hashjoin = off;"
    " SET LOCAL enable_mergejoin = off";

const char *const load_plan_sql =
    "SELECT c.version, count(d.job_id), coalesce(sum(d.n_chunks), 0),"
    " coalesce(sum(octet_length(cd.doc_id) + coalesce(octet_length(cd.metadata::text), 0)), 0)"
    " FROM collections c"
    " LEFT JOIN collection_documents cd ON cd.collection_id = c.id AND cd.version > 0"
    " LEFT JOIN documents d ON d.job_id = cd.job_id AND d.doc_index = cd.doc_index"
    " WHERE c.id = $1 GROUP BY c.version";

/* The metadata travels with a document's first chunk only. */
const char *const load_rows_sql =
    "SELECT cd.doc_id, CASE WHEN c.seq = d.first_seq THEN cd.metadata::text END, d.job_id,"
    " c.seq, c.chunk_index, c.char_start, c.char_end, c.embedding"
    " FROM collection_documents cd"
    " JOIN documents d ON d.job_id = cd.job_id AND d.doc_index = cd.doc_index"
    " JOIN chunks c ON c.job_id = d.job_id AND c.seq >= d.first_seq"
    "   AND c.seq < d.first_seq + d.n_chunks"
    " WHERE cd.collection_id = $1 AND cd.version > 0"
    " ORDER BY cd.doc_id, c.seq";

static void copy_col(const PGresult *r, int col, char *out, size_t n)
{
    snprintf(out, n, "%s", PQgetisnull(r, 0, col) ? "" : PQgetvalue(r, 0, col));
}

enum search_status search_coll_get(PGconn *c, int64_t key_id, const char *id,
                                   struct search_coll *out, char *err, size_t errlen)
{
    static const struct db_stmt head = {
        "search_coll_head",
        "SELECT model, output_dimensionality, query_task_type, normalize, version"
        " FROM collections WHERE id = $1 AND api_key_id = $2",
        2};
    if (!jobs_valid_id(id))
        return SEARCH_NOT_FOUND;
    char key[24];
    snprintf(key, sizeof(key), "%lld", (long long)key_id);
    const char *v[2] = {id, key};
    PGresult *r = db_exec_stmt(c, &head, v, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        db_error(r, c, "could not read the collection", err, errlen);
        PQclear(r);
        return SEARCH_ERROR;
    }
    enum search_status st = PQntuples(r) == 1 ? SEARCH_OK : SEARCH_NOT_FOUND;
    if (st == SEARCH_OK) {
        memset(out, 0, sizeof(*out));
        snprintf(out->id, sizeof(out->id), "%s", id);
        copy_col(r, 0, out->model, sizeof(out->model));
        out->dims = (int)db_int(PQgetvalue(r, 0, 1));
        copy_col(r, 2, out->query_task_type, sizeof(out->query_task_type));
        out->normalize = PQgetvalue(r, 0, 3)[0] == 't';
        out->version = db_int(PQgetvalue(r, 0, 4));
    }
    PQclear(r);
    return st;
}

bool load_begin(PGconn *c, const char *coll_id, struct load_plan *p, char *err, size_t errlen)
{
    memset(p, 0, sizeof(*p));
    if (!db_exec(c, load_begin_sql, err, errlen)) {
        load_end(c);
        return false;
    }
    const char *v[1] = {coll_id};
    PGresult *r = PQexecParams(c, load_plan_sql, 1, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        db_error(r, c, "could not plan the collection's load", err, errlen);
        PQclear(r);
        load_end(c);
        return false;
    }
    p->found = PQntuples(r) == 1;
    if (p->found) {
        p->version = db_int(PQgetvalue(r, 0, 0));
        p->docs = db_int(PQgetvalue(r, 0, 1));
        p->rows = db_int(PQgetvalue(r, 0, 2));
        p->string_bytes = db_int(PQgetvalue(r, 0, 3));
    }
    PQclear(r);
    return true;
}

void load_end(PGconn *c)
{
    PGresult *r = PQexec(c, "ROLLBACK");
    PQclear(r);
}

static int32_t be32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (int32_t)((uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 |
                     (uint32_t)u[3]);
}

/* Row 0 of a single-row result into a load_row; false when malformed. */
static bool read_row(const PGresult *r, struct load_row *o)
{
    if (PQnfields(r) != 8 || PQgetisnull(r, 0, 0) || PQgetlength(r, 0, 2) != 16 ||
        PQgetisnull(r, 0, 7))
        return false;
    for (int col = 3; col <= 6; col++)
        if (PQgetlength(r, 0, col) != 4)
            return false;
    o->doc_id = PQgetvalue(r, 0, 0);
    o->doc_id_len = (size_t)PQgetlength(r, 0, 0);
    o->metadata = PQgetisnull(r, 0, 1) ? NULL : PQgetvalue(r, 0, 1);
    o->metadata_len = o->metadata ? (size_t)PQgetlength(r, 0, 1) : 0;
    o->job_id = (const unsigned char *)PQgetvalue(r, 0, 2);
    o->seq = be32(PQgetvalue(r, 0, 3));
    o->chunk_index = be32(PQgetvalue(r, 0, 4));
    o->char_start = be32(PQgetvalue(r, 0, 5));
    o->char_end = be32(PQgetvalue(r, 0, 6));
    o->embedding = (const unsigned char *)PQgetvalue(r, 0, 7);
    o->embedding_len = (size_t)PQgetlength(r, 0, 7);
    return true;
}

bool load_rows(PGconn *c, const char *coll_id, load_sink_fn sink, void *arg, char *err,
               size_t errlen)
{
    const char *v[1] = {coll_id};
    if (!PQsendQueryParams(c, load_rows_sql, 1, NULL, v, NULL, NULL, 1) || !PQsetSingleRowMode(c)) {
        db_error(NULL, c, "could not read the collection's vectors", err, errlen);
        return false;
    }
    bool ok = true, stopped = false;
    PGresult *r;
    while ((r = PQgetResult(c)) != NULL) {
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_SINGLE_TUPLE && ok && !stopped) {
            struct load_row row;
            if (!read_row(r, &row)) {
                snprintf(err, errlen, "could not read the collection's vectors: malformed row");
                ok = false;
            } else if (!sink(arg, &row)) {
                stopped = true;
            }
        } else if (st != PGRES_SINGLE_TUPLE && st != PGRES_TUPLES_OK && ok) {
            db_error(r, c, "could not read the collection's vectors", err, errlen);
            ok = false;
        }
        PQclear(r);
    }
    if (stopped && ok)
        snprintf(err, errlen, "the collection's vectors could not be kept");
    return ok && !stopped;
}

void load_uuid_text(const unsigned char id[16], char out[37])
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[id[i] >> 4];
        out[o++] = hex[id[i] & 15];
    }
    out[o] = '\0';
}

bool load_chunks(PGconn *c, const unsigned char (*job_ids)[16], const int32_t *seqs, size_t n,
                 bool want_embedding, load_chunk_fn fill, void *arg, char *err, size_t errlen)
{
    if (n == 0)
        return true;
    struct buf ids, sq;
    buf_init(&ids, n * 40 + 16);
    buf_init(&sq, n * 12 + 16);
    bool ok = buf_putc(&ids, '{') && buf_putc(&sq, '{');
    for (size_t i = 0; i < n && ok; i++) {
        char u[37];
        load_uuid_text(job_ids[i], u);
        ok = (i == 0 || (buf_putc(&ids, ',') && buf_putc(&sq, ','))) && buf_puts(&ids, u) &&
             buf_printf(&sq, "%d", seqs[i]);
    }
    ok = ok && buf_putc(&ids, '}') && buf_putc(&sq, '}');
    if (!ok) {
        snprintf(err, errlen, "could not read chunks: out of memory");
        buf_cleanup(&ids);
        buf_cleanup(&sq);
        return false;
    }
    const char *v[3] = {ids.data, sq.data, want_embedding ? "t" : "f"};
    PGresult *r = PQexecParams(c,
                               "SELECT u.i - 1, c.text, CASE WHEN $3 THEN c.embedding END"
                               " FROM unnest($1::uuid[], $2::int4[]) WITH ORDINALITY AS u(j, s, i)"
                               " JOIN chunks c ON c.job_id = u.j AND c.seq = u.s",
                               3, NULL, v, NULL, NULL, 1);
    buf_cleanup(&ids);
    buf_cleanup(&sq);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        db_error(r, c, "could not read chunks", err, errlen);
        PQclear(r);
        return false;
    }
    for (int i = 0; i < PQntuples(r); i++) {
        int64_t at = db_bin_int(r, i, 0);
        if (at < 0 || (size_t)at >= n)
            continue;
        bool has_emb = !PQgetisnull(r, i, 2);
        fill(arg, (size_t)at, PQgetvalue(r, i, 1), (size_t)PQgetlength(r, i, 1),
             has_emb ? (const unsigned char *)PQgetvalue(r, i, 2) : NULL,
             has_emb ? (size_t)PQgetlength(r, i, 2) : 0);
    }
    PQclear(r);
    return true;
}
