/* embed.c: vectors for POST /openai/v1/embeddings, reused or embedded (see embed.h). */
#include "openai/embed.h"

#include "chunker/chunker.h"
#include "openai/render.h"
#include "store/db.h"
#include "store/identity.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool oai_vectors_init(struct oai_vectors *v, size_t n, int dims)
{
    memset(v, 0, sizeof(*v));
    v->n = n;
    v->dims = dims;
    v->f32le = calloc(n ? n : 1, (size_t)dims * 4);
    v->have = calloc(n ? n : 1, sizeof(bool));
    if (!v->f32le || !v->have) {
        oai_vectors_free(v);
        return false;
    }
    return true;
}

void oai_vectors_free(struct oai_vectors *v)
{
    free(v->f32le);
    free(v->have);
    memset(v, 0, sizeof(*v));
}

static void space_of(const struct oai_space *sp, struct identity_space *is)
{
    *is = (struct identity_space){sp->model, sp->dims, sp->task_type, sp->normalize};
}

bool oai_vectors_reuse(PGconn *c, int64_t key_id, const struct oai_space *sp,
                       const char *const *texts, const size_t *lens, struct oai_vectors *v,
                       char *err, size_t errlen)
{
    static const char hex[] = "0123456789abcdef";
    struct identity_space is;
    space_of(sp, &is);
    struct buf lit;
    buf_init(&lit, (size_t)1 << 30);
    bool ok = buf_putc(&lit, '{');
    for (size_t i = 0; ok && i < v->n; i++) {
        unsigned char id[IDENTITY_LEN];
        ok = identity_of(&is, NULL, 0, texts[i], lens[i], id) &&
             buf_puts(&lit, i ? ",\"\\\\x" : "\"\\\\x") && buf_reserve(&lit, 2 * IDENTITY_LEN + 2);
        for (size_t k = 0; ok && k < IDENTITY_LEN; k++) {
            lit.data[lit.len++] = hex[id[k] >> 4];
            lit.data[lit.len++] = hex[id[k] & 15];
        }
        if (ok) {
            lit.data[lit.len] = '\0';
            ok = buf_putc(&lit, '"');
        }
    }
    if (!(ok && buf_putc(&lit, '}'))) {
        buf_cleanup(&lit);
        snprintf(err, errlen, "out of memory");
        return false;
    }
    char key[24];
    snprintf(key, sizeof(key), "%lld", (long long)key_id);
    const char *vals[2] = {key, lit.data};
    /* one index probe per text (chunks_by_identity), whatever the table's size */
    PGresult *r =
        PQexecParams(c,
                     "SELECT u.o - 1, s.embedding, s.t FROM unnest($2::bytea[]) WITH ORDINALITY"
                     " AS u(id, o) CROSS JOIN LATERAL (SELECT embedding,"
                     "   coalesce(google_tokens, tokens) AS t FROM chunks"
                     "   WHERE key_id = $1 AND identity = u.id AND state = 2"
                     "   AND embedding IS NOT NULL LIMIT 1) s",
                     2, NULL, vals, NULL, NULL, 1);
    buf_cleanup(&lit);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        db_error(r, c, "could not look up stored vectors", err, errlen);
        PQclear(r);
        return false;
    }
    size_t row_bytes = (size_t)v->dims * 4;
    for (int i = 0; i < PQntuples(r); i++) {
        int64_t k = db_bin_int(r, i, 0);
        if (k < 0 || (size_t)k >= v->n || (size_t)PQgetlength(r, i, 1) != row_bytes || v->have[k])
            continue;
        memcpy(v->f32le + (size_t)k * row_bytes, PQgetvalue(r, i, 1), row_bytes);
        v->have[k] = true;
        v->tokens += db_bin_int(r, i, 2);
        v->reused++;
    }
    PQclear(r);
    return true;
}

enum search_embed_status oai_vectors_embed(struct search_engine *se, const struct oai_space *sp,
                                           const char *const *texts, const size_t *lens,
                                           struct oai_vectors *v, struct search_embed_info *info)
{
    struct search_coll coll;
    memset(&coll, 0, sizeof(coll));
    snprintf(coll.id, sizeof(coll.id), "%s", sp->coll_id);
    snprintf(coll.model, sizeof(coll.model), "%s", sp->model);
    coll.dims = sp->dims;
    snprintf(coll.query_task_type, sizeof(coll.query_task_type), "%s", sp->task_type);
    coll.normalize = sp->normalize;
    size_t row_bytes = (size_t)v->dims * 4;
    /* rows still missing, a text repeated in the request only once */
    size_t *todo = malloc(v->n * sizeof(size_t)), *same = malloc(v->n * sizeof(size_t));
    float *out = malloc((size_t)SEARCH_MAX_QUERIES * row_bytes);
    enum search_embed_status st = SEARCH_EMBED_RETRY;
    memset(info, 0, sizeof(*info));
    snprintf(info->detail, sizeof(info->detail), "out of memory");
    if (!todo || !same || !out)
        goto done;
    size_t nt = 0;
    for (size_t i = 0; i < v->n; i++) {
        same[i] = i;
        if (v->have[i])
            continue;
        for (size_t k = 0; k < nt && same[i] == i; k++)
            if (lens[todo[k]] == lens[i] && memcmp(texts[todo[k]], texts[i], lens[i]) == 0)
                same[i] = todo[k];
        if (same[i] == i)
            todo[nt++] = i;
    }
    st = SEARCH_EMBED_OK;
    info->detail[0] = '\0';
    for (size_t off = 0; off < nt && st == SEARCH_EMBED_OK; off += SEARCH_MAX_QUERIES) {
        size_t m = nt - off < SEARCH_MAX_QUERIES ? nt - off : SEARCH_MAX_QUERIES;
        const char *t[SEARCH_MAX_QUERIES];
        size_t l[SEARCH_MAX_QUERIES];
        for (size_t k = 0; k < m; k++) {
            t[k] = texts[todo[off + k]];
            l[k] = lens[todo[off + k]];
        }
        struct search_embed_info one;
        st = search_embed(se, &coll, t, l, m, out, &one);
        if (st != SEARCH_EMBED_OK) {
            *info = one;
            break;
        }
        info->tokens += one.tokens;
        info->estimated += one.estimated;
        info->elapsed_ms += one.elapsed_ms;
        v->tokens += one.tokens;
        v->sent += m;
        for (size_t k = 0; k < m; k++) {
            oai_f32le(out + k * (size_t)v->dims, (size_t)v->dims,
                      v->f32le + todo[off + k] * row_bytes);
            v->have[todo[off + k]] = true;
        }
    }
    if (st == SEARCH_EMBED_OK)
        for (size_t i = 0; i < v->n; i++)
            if (!v->have[i] && same[i] != i) {
                memcpy(v->f32le + i * row_bytes, v->f32le + same[i] * row_bytes, row_bytes);
                v->have[i] = true;
                v->tokens += chunker_token_estimate(texts[i], lens[i]);
            }
done:
    free(todo);
    free(same);
    free(out);
    return st;
}
