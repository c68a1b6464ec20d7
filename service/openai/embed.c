/* embed.c: vectors for POST /openai/v1/embeddings, reused or embedded (see embed.h). */
#include "openai/embed.h"

#include "chunker/chunker.h"
#include "store/jobs.h"
#include "store/pgarray.h"
#include "util/crypto.h"
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
    v->fresh = calloc(n ? n : 1, sizeof(bool));
    if (!v->f32le || !v->have || !v->fresh) {
        oai_vectors_free(v);
        return false;
    }
    return true;
}

void oai_vectors_free(struct oai_vectors *v)
{
    free(v->f32le);
    free(v->have);
    free(v->fresh);
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
        v->sent_tokens += one.tokens;
        v->sent_estimated += one.estimated;
        for (size_t k = 0; k < m; k++) {
            oai_f32le(out + k * (size_t)v->dims, (size_t)v->dims,
                      v->f32le + todo[off + k] * row_bytes);
            v->have[todo[off + k]] = true;
            v->fresh[todo[off + k]] = true;
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

/* A bytea element of a binary array: its length, then its bytes. */
static bool bytea_elem(struct buf *b, const unsigned char *p, size_t n)
{
    unsigned char len[4] = {(unsigned char)(n >> 24), (unsigned char)(n >> 16),
                            (unsigned char)(n >> 8), (unsigned char)n};
    return buf_append(b, len, 4) && buf_append(b, p, n);
}

bool oai_vectors_record(PGconn *c, int64_t key_id, const struct oai_space *sp,
                        const char *const *texts, const size_t *lens, const struct oai_vectors *v,
                        char *err, size_t errlen)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    for (size_t i = 0; i < v->n; i++)
        n += v->fresh[i];
    if (!n)
        return true;
    struct identity_space is;
    space_of(sp, &is);
    size_t row_bytes = (size_t)v->dims * 4;
    struct buf txt, ids, embs, toks, chars;
    buf_init(&txt, SIZE_MAX / 4);
    buf_init(&ids, SIZE_MAX / 4);
    buf_init(&embs, SIZE_MAX / 4);
    buf_init(&toks, SIZE_MAX / 4);
    buf_init(&chars, SIZE_MAX / 4);
    bool ok = buf_putc(&txt, '{') && buf_putc(&ids, '{') && buf_putc(&toks, '{') &&
              buf_putc(&chars, '{') && pgarray_begin(&embs, PGARRAY_BYTEA_OID, n);
    size_t k = 0;
    for (size_t i = 0; ok && i < v->n; i++) {
        if (!v->fresh[i])
            continue;
        unsigned char id[IDENTITY_LEN];
        const char *sep = k++ ? "," : "";
        /* the text as a NUL-terminated copy for the array literal */
        char *t = strndup(texts[i], lens[i]);
        ok = t && identity_of(&is, NULL, 0, texts[i], lens[i], id) && buf_puts(&txt, sep) &&
             pgarray_text(&txt, t) && buf_puts(&ids, sep) && buf_puts(&ids, "\"\\\\x") &&
             buf_reserve(&ids, 2 * IDENTITY_LEN + 2);
        free(t);
        for (size_t b = 0; ok && b < IDENTITY_LEN; b++) {
            ids.data[ids.len++] = hex[id[b] >> 4];
            ids.data[ids.len++] = hex[id[b] & 15];
        }
        if (ok)
            ids.data[ids.len] = '\0';
        ok = ok && buf_putc(&ids, '"') && bytea_elem(&embs, v->f32le + i * row_bytes, row_bytes) &&
             buf_printf(&toks, "%s%lld", sep,
                        (long long)chunker_token_estimate(texts[i], lens[i])) &&
             buf_printf(&chars, "%s%zu", sep, utf8_count(texts[i], lens[i]));
    }
    ok = ok && buf_putc(&txt, '}') && buf_putc(&ids, '}') && buf_putc(&toks, '}') &&
         buf_putc(&chars, '}');
    char job[JOB_ID_LEN + 1], key[24], dims[16], cnt[24], tok[24], est[24];
    if (ok && !uuid_v4(job))
        ok = false;
    if (!ok) {
        snprintf(err, errlen, "out of memory");
    } else {
        snprintf(key, sizeof(key), "%lld", (long long)key_id);
        snprintf(dims, sizeof(dims), "%d", sp->dims);
        snprintf(cnt, sizeof(cnt), "%zu", n);
        snprintf(tok, sizeof(tok), "%lld", (long long)v->sent_tokens);
        snprintf(est, sizeof(est), "%lld", (long long)v->sent_estimated);
        const char *vals[14] = {
            job,       key,       sp->model, sp->task_type, dims,     sp->normalize ? "t" : "f",
            cnt,       tok,       est,       txt.data,      ids.data, embs.data,
            toks.data, chars.data};
        int lensv[14] = {0};
        int fmts[14] = {0};
        lensv[11] = (int)embs.len;
        fmts[11] = 1;
        PGresult *r = PQexecParams(
            c,
            "WITH j AS (INSERT INTO jobs (id, api_key_id, display_name, model, task_type,"
            "   output_dimensionality, normalize, priority, max_chars, overlap_chars, documents,"
            "   chunks_total, chunks_pending, chunks_succeeded, token_estimate,"
            "   tokens_interactive, tokens_estimated, state, started_at, finished_at)"
            "   VALUES ($1, $2, 'openai embeddings', $3, $4, $5, $6, 0, 2000, 200, $7, $7, 0, $7,"
            "   $8, $8, $9, 'succeeded', now(), now()) RETURNING id),"
            " u AS (SELECT * FROM unnest($10::text[], $11::bytea[], $12::bytea[], $13::int[],"
            "   $14::int[]) WITH ORDINALITY AS u(text, ident, emb, tokens, chars, o)),"
            " d AS (INSERT INTO documents (job_id, doc_index, doc_id, chars, first_seq, n_chunks,"
            "   chunks_done) SELECT (SELECT id FROM j), o - 1, (o - 1)::text, chars, o - 1, 1, 1"
            "   FROM u)"
            " INSERT INTO chunks (job_id, seq, doc_index, chunk_index, char_start, char_end,"
            "   tokens, text, state, embedding, key_id, identity, text_json_len, title_json_len)"
            " SELECT (SELECT id FROM j), o - 1, o - 1, 0, 0, chars, tokens, text, 2, emb, $2,"
            "   ident, octet_length(to_json(text)::text) - 2, -1 FROM u",
            14, NULL, vals, lensv, fmts, 0);
        ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok)
            db_error(r, c, "could not record the embeddings", err, errlen);
        PQclear(r);
    }
    buf_cleanup(&txt);
    buf_cleanup(&ids);
    buf_cleanup(&embs);
    buf_cleanup(&toks);
    buf_cleanup(&chars);
    return ok;
}
