/* results.c: paging through a job's chunks and vectors (see results.h). */
#include "results.h"

#include "db.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

bool results_page(PGconn *c, const char *job_id, int64_t from, int limit, struct result_page *p,
                  char *err, size_t errlen)
{
    char f[24], l[16];
    snprintf(f, sizeof(f), "%lld", (long long)from);
    snprintf(l, sizeof(l), "%d", limit + 1);
    const char *vals[3] = {job_id, f, l};
    memset(p, 0, sizeof(*p));
    /* binary results: the vectors arrive as raw bytes, no hex round trip */
    p->res = PQexecParams(c,
                          "SELECT c.seq::int8, c.doc_index, c.chunk_index, c.char_start,"
                          " c.char_end, c.tokens, c.state::int4, d.doc_id, d.title,"
                          " d.metadata::text, c.text, c.embedding, c.error"
                          " FROM chunks c JOIN documents d"
                          "   ON d.job_id = c.job_id AND d.doc_index = c.doc_index"
                          " WHERE c.job_id = $1 AND c.seq >= $2::int8"
                          " ORDER BY c.seq LIMIT $3::int4",
                          3, NULL, vals, NULL, NULL, 1);
    if (PQresultStatus(p->res) != PGRES_TUPLES_OK) {
        db_error(p->res, c, "could not read results", err, errlen);
        PQclear(p->res);
        p->res = NULL;
        return false;
    }
    int rows = PQntuples(p->res);
    p->n = rows > limit ? (size_t)limit : (size_t)rows;
    p->next_seq = -1;
    if (rows > limit) {
        struct result_row r;
        results_row(p, (size_t)limit, &r);
        p->next_seq = r.seq;
    }
    return true;
}

static int64_t get_i8(const PGresult *r, int row, int col)
{
    uint32_t hi, lo;
    const char *v = PQgetvalue(r, row, col);
    memcpy(&hi, v, 4);
    memcpy(&lo, v + 4, 4);
    return (int64_t)(((uint64_t)ntohl(hi) << 32) | ntohl(lo));
}

static int get_i4(const PGresult *r, int row, int col)
{
    uint32_t x;
    memcpy(&x, PQgetvalue(r, row, col), 4);
    return (int)ntohl(x);
}

static const char *get_text(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

void results_row(const struct result_page *p, size_t i, struct result_row *r)
{
    const PGresult *res = p->res;
    int row = (int)i;
    r->seq = get_i8(res, row, 0);
    r->doc_index = get_i4(res, row, 1);
    r->chunk_index = get_i4(res, row, 2);
    r->char_start = get_i4(res, row, 3);
    r->char_end = get_i4(res, row, 4);
    r->tokens = get_i4(res, row, 5);
    r->state = get_i4(res, row, 6);
    r->doc_id = PQgetvalue(res, row, 7);
    r->title = get_text(res, row, 8);
    r->metadata = get_text(res, row, 9);
    r->text = PQgetvalue(res, row, 10);
    r->text_len = (size_t)PQgetlength(res, row, 10);
    r->embedding =
        PQgetisnull(res, row, 11) ? NULL : (const unsigned char *)PQgetvalue(res, row, 11);
    r->dims = r->embedding ? PQgetlength(res, row, 11) / 4 : 0;
    r->error = get_text(res, row, 12);
}

void results_page_free(struct result_page *p)
{
    PQclear(p->res);
    p->res = NULL;
}

float results_value(const unsigned char *e, int k)
{
    const unsigned char *b = e + 4 * k;
    uint32_t u = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}
