/* jobs_ingest_coll.c: a collection job's ingest: each document compared with the
 * collection's before it is chunked, only what changed stored (see jobs_ingest.h). */
#include "store/jobs_ingest_internal.h"

#include "store/db.h"
#include "store/identity.h"
#include "store/pgarray.h"
#include "util/buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COLL_CHUNKS_BATCH (8u << 20) /* a collection job's chunk rows per COPY */

/* ---- collections: compare, then store what changed ---- */

/* Queue a copy of d (document number index) for the next lookup. */
bool ingest_queue_doc(struct jobs_ingest *in, size_t index, const struct ingest_doc *d)
{
    if (!in->q && !(in->q = calloc(QUEUE_DOCS, sizeof(*in->q))))
        return false;
    struct qdoc *x = &in->q[in->nq];
    memset(x, 0, sizeof(*x));
    x->index = index;
    x->id = strndup(d->id, d->id_len);
    x->id_len = d->id_len;
    x->text = malloc(d->text_len + 1);
    x->text_len = d->text_len;
    if (x->text) {
        memcpy(x->text, d->text, d->text_len);
        x->text[d->text_len] = '\0';
    }
    if (d->title) {
        x->title = strndup(d->title, d->title_len);
        x->title_len = d->title_len;
    }
    if (d->metadata_json)
        x->meta = strdup(d->metadata_json);
    in->nq++;
    in->qbytes += d->id_len + d->text_len + d->title_len + 64;
    bool ok = x->id && x->text && (!d->title || x->title) && (!d->metadata_json || x->meta) &&
              identity_content(d->title, d->title_len, d->text, d->text_len, x->content);
    return ok;
}

/* "{a,b,...}" of the queued ids. */
static bool queue_ids(const struct jobs_ingest *in, struct buf *out)
{
    bool ok = buf_putc(out, '{');
    for (size_t i = 0; i < in->nq && ok; i++)
        ok = (!i || buf_putc(out, ',')) && pgarray_text(out, in->q[i].id);
    return ok && buf_putc(out, '}');
}

/* Write the new versions and metadata changes collected so far (their
 * document rows must be stored first: called by ingest_flush). */
bool ingest_upserts_send(struct jobs_ingest *in, char *err, size_t errlen)
{
    bool ok = true;
    if (in->n_up) {
        ok =
            buf_putc(&in->up_ids, '}') && buf_putc(&in->up_idx, '}') && buf_putc(&in->up_hash, '}');
        const char *v[5] = {in->coll, in->id, in->up_ids.data, in->up_idx.data, in->up_hash.data};
        /* ids in order, so that two jobs upserting the same documents take their row locks in
         * the same order */
        ok = ok &&
             ingest_exec_params(in->c,
                                "INSERT INTO collection_documents (collection_id, doc_id,"
                                " next_job_id, next_doc_index, next_content_sha256)"
                                " SELECT $1, u.id, $2, u.i, decode(u.h, 'hex')"
                                " FROM unnest($3::text[], $4::int[], $5::text[]) AS u(id, i, h)"
                                " ORDER BY u.id"
                                " ON CONFLICT (collection_id, doc_id) DO UPDATE SET"
                                " next_job_id = excluded.next_job_id,"
                                " next_doc_index = excluded.next_doc_index,"
                                " next_content_sha256 = excluded.next_content_sha256,"
                                " error = NULL, updated_at = now()",
                                5, v, "could not record new document versions", err, errlen);
    }
    if (ok && in->n_md) {
        ok = buf_putc(&in->md_ids, '}') && buf_putc(&in->md_meta, '}');
        const char *v[3] = {in->coll, in->md_ids.data, in->md_meta.data};
        /* each row found by its key, updated by its ctid (see ingest_queue_resolve) */
        ok = ok && ingest_exec_params(in->c,
                                      "UPDATE collection_documents SET metadata = x.m::json,"
                                      " updated_at = now()"
                                      " FROM (SELECT k.tid, u.m FROM unnest($2::text[], $3::text[])"
                                      "   AS u(id, m) CROSS JOIN LATERAL (SELECT cd.ctid AS tid"
                                      "   FROM collection_documents cd WHERE cd.collection_id = $1"
                                      "   AND cd.doc_id = u.id OFFSET 0) k) x"
                                      " WHERE collection_documents.ctid = x.tid",
                                      3, v, "could not update document metadata", err, errlen);
    }
    buf_reset(&in->up_ids);
    buf_reset(&in->up_idx);
    buf_reset(&in->up_hash);
    buf_reset(&in->md_ids);
    buf_reset(&in->md_meta);
    in->n_up = in->n_md = 0;
    return ok;
}

/* Append to a text-array literal being built ("{" first). */
static bool arr_add(struct buf *b, size_t n, const char *s)
{
    return (n ? buf_putc(b, ',') : buf_putc(b, '{')) && pgarray_text(b, s);
}

/* Look the queued documents up in the collection and store each as what it
 * is: new or updated (rows, chunks, a next version), metadata only, or
 * unchanged (a document row without chunks). */
bool ingest_queue_resolve(struct jobs_ingest *in, char *err, size_t errlen)
{
    if (!in->nq)
        return true;
    /* the lookup needs the connection: no COPY may be open */
    if (!ingest_chunks_end(in, false, err, errlen))
        return false;
    struct buf ids;
    buf_init(&ids, SIZE_MAX / 4);
    bool ok = queue_ids(in, &ids);
    const char *v[2] = {in->coll, ids.data};
    /* compared with the latest version accepted: the one being embedded, else
     * the current. One primary-key probe per id, in a subquery the planner may
     * not flatten (OFFSET 0): "doc_id = ANY($2)" was planned as a scan of the
     * whole collection filtered by the array (3.4 s per 512 ids at 600,000
     * documents), and a join as a hash of the whole collection, so that a
     * large upsert grew quadratic (1,000,000 documents: 197 s to store). */
    PGresult *r = ok ? PQexecParams(in->c,
                                    "SELECT u.id, cd.h, cd.m, cd.v FROM unnest($2::text[]) AS u(id)"
                                    " CROSS JOIN LATERAL (SELECT"
                                    "   coalesce(next_content_sha256, content_sha256) AS h,"
                                    "   metadata::text AS m, version AS v FROM collection_documents"
                                    "   WHERE collection_id = $1 AND doc_id = u.id OFFSET 0) cd",
                                    2, NULL, v, NULL, NULL, 0)
                     : NULL;
    buf_cleanup(&ids);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
        if (r)
            db_error(r, in->c, "could not look up collection documents", err, errlen);
        else
            snprintf(err, errlen, "out of memory");
        PQclear(r);
        return false;
    }
    int rows = PQntuples(r);
    for (size_t k = 0; k < in->nq && ok; k++) {
        struct qdoc *x = &in->q[k];
        int row = -1;
        for (int j = 0; j < rows && row < 0; j++)
            if ((size_t)PQgetlength(r, j, 0) == x->id_len &&
                memcmp(PQgetvalue(r, j, 0), x->id, x->id_len) == 0)
                row = j;
        char hex[2 * IDENTITY_LEN + 3];
        for (int b = 0; b < IDENTITY_LEN; b++)
            snprintf(hex + 2 * b, 3, "%02x", x->content[b]);
        bool same = row >= 0 && !PQgetisnull(r, row, 1) &&
                    strcmp(PQgetvalue(r, row, 1) + 2, hex) == 0; /* "\x..." */
        bool meta_same = row >= 0 && (PQgetisnull(r, row, 2)
                                          ? x->meta == NULL
                                          : x->meta && strcmp(PQgetvalue(r, row, 2), x->meta) == 0);
        struct ingest_doc d = {x->id,   x->id_len, x->title,   x->title_len,
                               x->meta, x->text,   x->text_len};
        if (same) {
            ok = ingest_store_doc(in, x->index, &d, x->content, false);
            if (meta_same) {
                in->docs_unchanged++;
            } else {
                in->docs_metadata++;
                ok = ok && arr_add(&in->md_ids, in->n_md, x->id) &&
                     arr_add(&in->md_meta, in->n_md, x->meta ? x->meta : "null");
                in->n_md++;
            }
        } else {
            bool updated = row >= 0 && db_int(PQgetvalue(r, row, 3)) > 0;
            (*(updated ? &in->docs_updated : &in->docs_new))++;
            char idx[24];
            snprintf(idx, sizeof(idx), "%zu", x->index);
            ok = ingest_store_doc(in, x->index, &d, x->content, true) &&
                 arr_add(&in->up_ids, in->n_up, x->id) && arr_add(&in->up_idx, in->n_up, idx) &&
                 arr_add(&in->up_hash, in->n_up, hex);
            in->n_up++;
        }
    }
    PQclear(r);
    if (!ok && in->over_chunks)
        ingest_over_chunks_err(in, err, errlen);
    else if (!ok)
        snprintf(err, errlen, "could not store documents: out of memory");
    for (size_t k = 0; k < in->nq; k++)
        ingest_qdoc_free(&in->q[k]);
    in->nq = in->qbytes = 0;
    /* Rows go out in batches: chunk rows by COLL_CHUNKS_BATCH (a COPY each,
     * closed before the next lookup needs the connection), document rows
     * and with them the versions by INGEST_DOCS_BATCH. Flushing everything
     * here, every QUEUE_DOCS documents, cost a chunks COPY, a documents COPY
     * and an INSERT per 512 documents, each waiting for the server: a
     * 1,000,000-document upsert took 4 minutes to store against 21 s for the
     * same documents outside a collection. */
    return ok &&
           (in->chunks.len < COLL_CHUNKS_BATCH ||
            (ingest_chunks_send(in, err, errlen) && ingest_chunks_end(in, false, err, errlen))) &&
           (in->docs.len < INGEST_DOCS_BATCH || ingest_flush(in, err, errlen));
}

int ingest_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

enum jobs_result jobs_ingest_delete(struct jobs_ingest *in, const char *const *ids, size_t n,
                                    size_t *missing, char *err, size_t errlen)
{
    if (!in->coll[0] || !n)
        return JOBS_OK;
    char **grown = realloc(in->del_sorted, (in->n_del_sorted + n) * sizeof(*grown));
    bool ok = grown != NULL;
    if (ok)
        in->del_sorted = grown;
    for (size_t i = 0; i < n && ok; i++) {
        ok = arr_add(&in->del, in->n_del++, ids[i]) &&
             (in->del_sorted[in->n_del_sorted] = strdup(ids[i])) != NULL;
        in->n_del_sorted += ok;
    }
    if (ok)
        qsort(in->del_sorted, in->n_del_sorted, sizeof(*in->del_sorted), ingest_cmp_str);
    struct buf lit;
    buf_init(&lit, SIZE_MAX / 4);
    ok = ok && buf_puts(&lit, in->del.data) && buf_putc(&lit, '}');
    if (!ok) {
        buf_cleanup(&lit);
        snprintf(err, errlen, "out of memory");
        return JOBS_ERROR;
    }
    const char *v[2] = {in->coll, lit.data};
    PGresult *r = PQexecParams(in->c,
                               "SELECT u.o - 1 FROM unnest($2::text[]) WITH ORDINALITY AS u(id, o)"
                               " WHERE NOT EXISTS (SELECT 1 FROM collection_documents cd"
                               "   WHERE cd.collection_id = $1 AND cd.doc_id = u.id)"
                               " ORDER BY u.o LIMIT 1",
                               2, NULL, v, NULL, NULL, 0);
    buf_cleanup(&lit);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        db_error(r, in->c, "could not check the documents to delete", err, errlen);
        PQclear(r);
        return JOBS_ERROR;
    }
    enum jobs_result res = JOBS_OK;
    if (PQntuples(r) == 1) {
        *missing = (size_t)db_int(PQgetvalue(r, 0, 0)) + (in->n_del - n);
        res = JOBS_NOT_FOUND;
    }
    PQclear(r);
    return res;
}
