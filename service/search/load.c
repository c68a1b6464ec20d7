/* load.c: a collection's current chunks read from PostgreSQL for search (see load.h). */
#include "search/load.h"

#include "search/search.h"
#include "store/db.h"
#include "store/jobs.h"

#include <stddef.h>
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
    "SELECT count(*), coalesce(sum(d.n_chunks), 0),"
    " coalesce(sum(octet_length(cd.doc_id) + coalesce(octet_length(cd.metadata::text), 0)), 0)"
    " FROM collection_documents cd"
    " JOIN documents d ON d.job_id = cd.job_id AND d.doc_index = cd.doc_index"
    " WHERE cd.collection_id = $1 AND cd.version > 0";

/* The metadata travels with a document's first chunk only. COPY takes no
 * parameters: the collection id is set (as a parameter) into a setting of
 * the transaction, which the query reads. */
#define ROWS_SELECT                                                                                \
    "SELECT cd.doc_id, CASE WHEN c.seq = d.first_seq THEN cd.metadata::text END, d.job_id,"        \
    " c.seq, c.chunk_index, c.char_start, c.char_end, c.embedding"                                 \
    " FROM collection_documents cd"                                                                \
    " JOIN documents d ON d.job_id = cd.job_id AND d.doc_index = cd.doc_index"                     \
    " JOIN chunks c ON c.job_id = d.job_id AND c.seq >= d.first_seq"                               \
    "   AND c.seq < d.first_seq + d.n_chunks"                                                      \
    " WHERE cd.collection_id = current_setting('embedd.search_collection')::uuid"                  \
    "   AND cd.version > 0"                                                                        \
    " ORDER BY cd.doc_id, c.seq"
const char *const load_rows_select = ROWS_SELECT;
const char *const load_rows_sql = "COPY (" ROWS_SELECT ") TO STDOUT (FORMAT binary)";
const char *const load_rows_set_sql = "SELECT set_config('embedd.search_collection', $1, true)";

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

bool load_begin(PGconn *c, const char *coll_id, bool *found, int64_t *version, char *err,
                size_t errlen)
{
    *found = false;
    *version = 0;
    if (!db_exec(c, load_begin_sql, err, errlen)) {
        load_end(c);
        return false;
    }
    const char *v[1] = {coll_id};
    PGresult *r =
        PQexecParams(c, "SELECT version FROM collections WHERE id = $1", 1, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        db_error(r, c, "could not read the collection", err, errlen);
        PQclear(r);
        load_end(c);
        return false;
    }
    *found = PQntuples(r) == 1;
    if (*found)
        *version = db_int(PQgetvalue(r, 0, 0));
    PQclear(r);
    return true;
}

bool load_plan(PGconn *c, const char *coll_id, struct load_plan *p, char *err, size_t errlen)
{
    const char *v[1] = {coll_id};
    PGresult *r = PQexecParams(c, load_plan_sql, 1, NULL, v, NULL, NULL, 0);
    bool ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
    if (!ok) {
        db_error(r, c, "could not measure the collection", err, errlen);
    } else {
        p->docs = db_int(PQgetvalue(r, 0, 0));
        p->rows = db_int(PQgetvalue(r, 0, 1));
        p->string_bytes = db_int(PQgetvalue(r, 0, 2));
    }
    PQclear(r);
    return ok;
}

void load_end(PGconn *c)
{
    PGresult *r = PQexec(c, "ROLLBACK");
    PQclear(r);
}

static uint32_t be32(const unsigned char *u)
{
    return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | (uint32_t)u[3];
}

/* COPY's binary format: a signature, flags and a header extension, then per
 * tuple a field count (int16; -1 ends the data) and per field a length
 * (int32; -1 is NULL) and the bytes, all integers big-endian. */
static const char copy_signature[11] = "PGCOPY\n\377\r\n";

/* One field of a tuple at *p (before end): its bytes and length (NULL: SQL NULL). */
static bool next_field(const unsigned char **p, const unsigned char *end, const unsigned char **v,
                       int32_t *len)
{
    if (end - *p < 4)
        return false;
    *len = (int32_t)be32(*p);
    *p += 4;
    if (*len < 0) {
        *v = NULL;
        return *len == -1;
    }
    if (end - *p < *len)
        return false;
    *v = *p;
    *p += *len;
    return true;
}

/* Parse the tuples of one COPY message into sink; *done at the trailer. 1:
 * fine, 0: the sink stopped, -1: malformed. */
static int feed(const unsigned char *p, const unsigned char *end, load_sink_fn sink, void *arg,
                bool *done)
{
    while (p < end && !*done) {
        if (end - p < 2)
            return -1;
        int16_t nf = (int16_t)((uint16_t)p[0] << 8 | p[1]);
        p += 2;
        if (nf == -1) {
            *done = true;
            break;
        }
        if (nf != 8)
            return -1;
        const unsigned char *v[8];
        int32_t len[8];
        for (int i = 0; i < 8; i++)
            if (!next_field(&p, end, &v[i], &len[i]))
                return -1;
        if (!v[0] || !v[2] || len[2] != 16 || !v[7] || len[3] != 4 || len[4] != 4 || len[5] != 4 ||
            len[6] != 4)
            return -1;
        struct load_row row = {(const char *)v[0],
                               (size_t)len[0],
                               (const char *)v[1],
                               v[1] ? (size_t)len[1] : 0,
                               v[2],
                               (int32_t)be32(v[3]),
                               (int32_t)be32(v[4]),
                               (int32_t)be32(v[5]),
                               (int32_t)be32(v[6]),
                               v[7],
                               (size_t)len[7]};
        if (!sink(arg, &row))
            return 0;
    }
    return p == end || *done ? 1 : -1;
}

/* Ask the server to stop the statement in progress on c. */
static void cancel(PGconn *c)
{
    PGcancel *k = PQgetCancel(c);
    char why[256];
    if (k) {
        (void)PQcancel(k, why, sizeof(why));
        PQfreeCancel(k);
    }
}

bool load_rows(PGconn *c, const char *coll_id, load_sink_fn sink, void *arg, char *err,
               size_t errlen)
{
    const char *v[1] = {coll_id};
    PGresult *r = PQexecParams(c, load_rows_set_sql, 1, NULL, v, NULL, NULL, 0);
    bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        db_error(r, c, "could not read the collection's vectors", err, errlen);
    PQclear(r);
    if (!ok)
        return false;
    r = PQexec(c, load_rows_sql);
    if (PQresultStatus(r) != PGRES_COPY_OUT) {
        db_error(r, c, "could not read the collection's vectors", err, errlen);
        PQclear(r);
        return false;
    }
    PQclear(r);
    bool first = true, done = false;
    int state = 1; /* feed's last answer */
    char *buf;
    int n;
    while ((n = PQgetCopyData(c, &buf, 0)) > 0) {
        const unsigned char *p = (const unsigned char *)buf, *end = p + n;
        if (first && state == 1) {
            first = false;
            if (n < 19 || memcmp(p, copy_signature, sizeof(copy_signature)) != 0 ||
                end - (p + 19) < (ptrdiff_t)be32(p + 15)) {
                state = -1;
                cancel(c);
            } else {
                p += 19 + be32(p + 15);
            }
        }
        if (state == 1) {
            state = feed(p, end, sink, arg, &done);
            if (state != 1)
                cancel(c); /* the rest is not wanted: stop the server sending it */
        }
        PQfreemem(buf);
    }
    if (n == -2 && state == 1)
        db_error(NULL, c, "could not read the collection's vectors", err, errlen);
    while ((r = PQgetResult(c)) != NULL) {
        if (PQresultStatus(r) != PGRES_COMMAND_OK && n != -2 && state == 1) {
            db_error(r, c, "could not read the collection's vectors", err, errlen);
            n = -2;
        }
        PQclear(r);
    }
    if (n == -2 && state == 1)
        return false;
    if (state < 0 || (state == 1 && !done))
        snprintf(err, errlen, "could not read the collection's vectors: malformed COPY data");
    else if (state == 0)
        snprintf(err, errlen, "the collection's vectors could not be kept");
    return state == 1 && done;
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
