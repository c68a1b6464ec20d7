/* test_search.c: the search engine against PostgreSQL: its results and their order equal a
 * brute-force reference computed here in double precision, in memory and streamed, on a few
 * thousand vectors, with ties, filters, several queries at once, k bounds, documents re-embedded
 * (their current version only), deleted documents, 128-d and 3072-d collections; the load reads
 * by index only. */
#include "dbh.h"
#include "search/load.h"
#include "search/search.h"
#include "store/collections.h"
#include "store/jobs.h"
#include "store/jobs_ingest.h"
#include "store/keys.h"
#include "store/migrate.h"
#include "store/pipeline.h"

#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct dbh db;
static int64_t key_id, other_key;

/* What the test knows of every chunk it stored. */
struct ref {
    char doc[32];
    char job[JOB_ID_LEN + 1];
    int seq, chunk_index, char_start, char_end;
    int lang, year; /* metadata: lang "en" (0) / "fr" (1), year */
    bool live;      /* part of the collection's current version */
    float *v;       /* as stored: normalised as the job asked */
};
static struct ref *refs;
static size_t n_refs;
static int dims;
static bool coll_norm;  /* the collection's normalize setting */
static bool normalized; /* its vectors are stored unit length */

static void setup(void)
{
    char err[512], key[KEY_LEN + 1];
    int applied;
    dbh_create(&db);
    cr_assert(migrate_run(db.conn, &applied, err, sizeof(err)), "%s", err);
    cr_assert(keys_create(db.conn, "t", key, &key_id, err, sizeof(err)), "%s", err);
    cr_assert(keys_create(db.conn, "u", key, &other_key, err, sizeof(err)), "%s", err);
}

static void teardown(void)
{
    for (size_t i = 0; i < n_refs; i++)
        free(refs[i].v);
    free(refs);
    refs = NULL;
    n_refs = 0;
    dbh_drop(&db);
}

TestSuite(search, .init = setup, .fini = teardown, .timeout = 300);

static uint64_t mix(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* The vector of a chunk: pseudo-random in [-1, 1) from (seed, i). */
static void gen(uint64_t seed, int n, float *out)
{
    for (int i = 0; i < n; i++)
        out[i] = (float)(ldexp((double)(mix(seed * 7919 + (uint64_t)i) >> 11), -53) * 2.0 - 1.0);
}

/* Normalised the way the store does it (store/pgarray.c). */
static void normalise(float *v, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++)
        s += (double)v[i] * (double)v[i];
    double norm = sqrt(s);
    for (int i = 0; i < n; i++)
        v[i] = (float)((double)v[i] / norm);
}

static void make_coll(int d, bool norm, char id[JOB_ID_LEN + 1])
{
    char err[512];
    struct coll_spec s = {
        key_id, "kb", "gemini-embedding-001", d, "RETRIEVAL_DOCUMENT", "RETRIEVAL_QUERY", norm,
        2000,   0};
    cr_assert_eq(coll_create(db.conn, &s, id, err, sizeof(err)), JOBS_OK, "%s", err);
    dims = d;
    coll_norm = norm;
    normalized = norm; /* below 3072 by the store, at 3072 as Google returns them */
}

/* Document number i: "d00042"; every 97th has three chunks; metadata lang and year. */
static void doc_text(int i, const char *prefix, char *text, size_t n)
{
    int len = snprintf(text, n, "%s text of document %d.", prefix, i);
    if (i % 97 == 5)
        while (len + 60 < (int)n - 1 && len < 4500)
            len += snprintf(text + len, n - (size_t)len, " more words to make it long %s %d.",
                            prefix, i);
}

/* Upsert documents [from, to) into coll with texts "<prefix> ..."; returns the job id. */
static void upsert(const char *coll, int from, int to, const char *prefix, bool meta_flip,
                   char job[JOB_ID_LEN + 1])
{
    char err[512];
    struct job_spec spec = {
        key_id, NULL, "gemini-embedding-001", "RETRIEVAL_DOCUMENT", dims, coll_norm, 0, 2000,
        0,      coll};
    struct jobs_ingest *in = jobs_ingest_begin(db.conn, &spec, err, sizeof(err));
    cr_assert_not_null(in, "%s", err);
    static char text[6000];
    for (int i = from; i < to; i++) {
        char did[16], meta[64];
        snprintf(did, sizeof(did), "d%05d", i);
        doc_text(i, prefix, text, sizeof(text));
        snprintf(meta, sizeof(meta), "{\"lang\":\"%s\",\"year\":%d}",
                 ((i % 3 == 0) != meta_flip) ? "fr" : "en", 2020 + i % 5);
        struct ingest_doc d = {did, strlen(did), NULL, 0, meta, text, strlen(text)};
        size_t dup;
        cr_assert_eq(jobs_ingest_add(in, &d, &dup, err, sizeof(err)), JOBS_OK, "%s", err);
    }
    cr_assert(jobs_ingest_finish(in, job, err, sizeof(err)), "%s", err);
}

static int to_int(const char *s)
{
    return (int)strtol(s, NULL, 10);
}

/* Learn the job's chunks (doc, chunk, seq) and give each a vector; documents d00011 and
 * d00012 get d00010's (ties). Earlier versions of the same documents stop being live when
 * live_now (their new version is current at once: the caller embeds right after). */
static void learn(const char *job, uint64_t salt)
{
    const char *v[1] = {job};
    PGresult *r = PQexecParams(db.conn,
                               "SELECT d.doc_id, c.chunk_index, c.char_start, c.char_end, c.seq,"
                               " d.metadata->>'lang', (d.metadata->>'year')::int"
                               " FROM documents d JOIN chunks c ON c.job_id = d.job_id"
                               " AND c.doc_index = d.doc_index WHERE d.job_id = $1 ORDER BY c.seq",
                               1, NULL, v, NULL, NULL, 0);
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQerrorMessage(db.conn));
    refs = realloc(refs, (n_refs + (size_t)PQntuples(r)) * sizeof(*refs));
    for (int i = 0; i < PQntuples(r); i++) {
        struct ref *f = &refs[n_refs++];
        memset(f, 0, sizeof(*f));
        snprintf(f->doc, sizeof(f->doc), "%s", PQgetvalue(r, i, 0));
        snprintf(f->job, sizeof(f->job), "%s", job);
        f->chunk_index = to_int(PQgetvalue(r, i, 1));
        f->char_start = to_int(PQgetvalue(r, i, 2));
        f->char_end = to_int(PQgetvalue(r, i, 3));
        f->seq = to_int(PQgetvalue(r, i, 4));
        f->lang = strcmp(PQgetvalue(r, i, 5), "fr") == 0;
        f->year = to_int(PQgetvalue(r, i, 6));
        int num = to_int(f->doc + 1);
        if (num == 11 || num == 12)
            num = 10;
        f->v = malloc(sizeof(float) * (size_t)dims);
        gen(salt * 1000003 + (uint64_t)num * 101 + (uint64_t)f->chunk_index, dims, f->v);
        if (normalized)
            normalise(f->v, dims);
    }
    PQclear(r);
}

static const struct ref *find_ref(const char *job, int seq)
{
    for (size_t i = 0; i < n_refs; i++)
        if (refs[i].seq == seq && strcmp(refs[i].job, job) == 0)
            return &refs[i];
    return NULL;
}

static size_t size_of(const struct pipe_batch *b, const struct pipe_chunk *c, void *arg)
{
    (void)b;
    (void)arg;
    return (size_t)c->text_json_len + 100;
}

/* Claim everything pending and store each chunk's vector; the documents whose new version
 * became current are live, their older versions no longer. */
static void embed_all(void)
{
    char err[512];
    for (;;) {
        struct pipe_batch b;
        bool found;
        int64_t ms;
        struct pipe_claim_opts o = {.owner = "w",
                                    .lease_ms = 60000,
                                    .max_items = 5000,
                                    .max_bytes = 1 << 26,
                                    .overhead_bytes = 50,
                                    .size = size_of,
                                    .inline_max_bytes = 1 << 26};
        cr_assert(pipe_claim(db.conn, &o, &b, &found, &ms, err, sizeof(err)), "%s", err);
        if (!found)
            break;
        struct pipe_result *r = calloc(b.n_chunks, sizeof(*r));
        for (size_t i = 0; i < b.n_chunks; i++) {
            const struct ref *f = find_ref(b.job_id, b.chunks[i].seq);
            cr_assert_not_null(f, "chunk %d of job %s", b.chunks[i].seq, b.job_id);
            r[i] = (struct pipe_result){b.chunks[i].seq, f->v, dims, NULL, 5};
        }
        size_t stored, requeued, failed;
        cr_assert(pipe_store_results(db.conn, &b, r, b.n_chunks, 3, &stored, &requeued, &failed,
                                     err, sizeof(err)),
                  "%s", err);
        cr_assert_eq(stored, b.n_chunks);
        free(r);
        pipe_batch_free(&b);
    }
    /* live: the chunks of each document's current job */
    PGresult *r =
        PQexec(db.conn, "SELECT doc_id, job_id FROM collection_documents WHERE version > 0");
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK);
    for (size_t i = 0; i < n_refs; i++) {
        refs[i].live = false;
        for (int j = 0; j < PQntuples(r); j++)
            if (strcmp(refs[i].doc, PQgetvalue(r, j, 0)) == 0 &&
                strcmp(refs[i].job, PQgetvalue(r, j, 1)) == 0)
                refs[i].live = true;
    }
    PQclear(r);
}

/* ---- the reference: every live chunk scored in double precision, sorted ---- */

struct scored {
    const struct ref *f;
    double s;
};

static int cmp_scored(const void *pa, const void *pb)
{
    const struct scored *a = pa, *b = pb;
    if (a->s != b->s)
        return a->s > b->s ? -1 : 1;
    int c = strcmp(a->f->doc, b->f->doc);
    return c ? c : a->f->chunk_index - b->f->chunk_index;
}

/* filter: -1 none, else lang must equal it (and year when year_eq > 0) */
static size_t reference(const float *query, int lang, int year_eq, struct scored *out)
{
    const float *q = query; /* cosine: the query as given */
    double qn = 0;
    for (int i = 0; i < dims; i++)
        qn += (double)q[i] * (double)q[i];
    qn = sqrt(qn);
    size_t n = 0;
    for (size_t i = 0; i < n_refs; i++) {
        const struct ref *f = &refs[i];
        if (!f->live || (lang >= 0 && f->lang != lang) || (year_eq > 0 && f->year != year_eq))
            continue;
        double dot = 0, xn = 0;
        for (int j = 0; j < dims; j++) {
            dot += (double)q[j] * (double)f->v[j];
            xn += (double)f->v[j] * (double)f->v[j];
        }
        out[n++] = (struct scored){f, dot / (qn * sqrt(xn))};
    }
    qsort(out, n, sizeof(*out), cmp_scored);
    return n;
}

static void check_hits(const struct search_result *res, size_t qi, const struct scored *want,
                       size_t n_want, int k)
{
    size_t expect = n_want < (size_t)k ? n_want : (size_t)k;
    cr_assert_eq(res->counts[qi], expect, "query %zu: %zu hits, want %zu", qi, res->counts[qi],
                 expect);
    for (size_t i = 0; i < expect; i++) {
        const struct search_hit *h = &res->hits[qi * (size_t)res->k + i];
        const struct ref *f = want[i].f;
        cr_assert(strcmp(h->doc_id, f->doc) == 0 && h->chunk_index == f->chunk_index,
                  "query %zu rank %zu: got %s/%d (%.17g), want %s/%d (%.17g)", qi, i, h->doc_id,
                  h->chunk_index, h->score, f->doc, f->chunk_index, want[i].s);
        cr_assert(fabs(h->score - want[i].s) <= 1e-12, "rank %zu: score %.17g, want %.17g", i,
                  h->score, want[i].s);
        cr_assert_eq(h->char_start, f->char_start);
        cr_assert_eq(h->char_end, f->char_end);
    }
}

static struct search_engine *engine(int64_t budget, int threads)
{
    char err[256];
    struct search_opts o = {.memory_bytes = budget, .threads = threads, .query_timeout_ms = 1000};
    struct search_engine *e = search_engine_new(&o, err, sizeof(err));
    cr_assert_not_null(e, "%s", err);
    return e;
}

/* Run queries (nq vectors) through e and compare each with the reference. */
static void run_check(struct search_engine *e, const char *coll, const float *queries, size_t nq,
                      int k, int lang, int year, bool want_streamed)
{
    char err[512];
    struct search_coll c;
    cr_assert_eq(search_coll_get(db.conn, key_id, coll, &c, err, sizeof(err)), SEARCH_OK, "%s",
                 err);
    struct search_filter f;
    search_filter_init(&f);
    if (lang >= 0) {
        json_object *s = json_object_new_string(lang ? "fr" : "en");
        cr_assert(search_filter_add(&f, "lang", 4, s));
        json_object_put(s);
    }
    if (year > 0) {
        json_object *y = json_object_new_double((double)year); /* 2022.0 equals 2022 */
        cr_assert(search_filter_add(&f, "year", 4, y));
        json_object_put(y);
    }
    struct search_query q = {queries, nq, k, lang >= 0 ? &f : NULL, false, true, false};
    struct search_result res;
    cr_assert_eq(search_run(e, db.conn, &c, &q, &res, err, sizeof(err)), SEARCH_OK, "%s", err);
    cr_assert_eq(res.streamed, want_streamed);
    cr_assert_eq(PQtransactionStatus(db.conn), PQTRANS_IDLE);
    struct scored *want = malloc(sizeof(*want) * (n_refs + 1));
    for (size_t i = 0; i < nq; i++) {
        size_t n = reference(queries + i * (size_t)dims, lang, year, want);
        check_hits(&res, i, want, n, k);
    }
    free(want);
    search_result_free(&res);
    search_filter_cleanup(&f);
}

/* A collection of n documents (a few of several chunks), embedded. */
static void fill(int d, bool norm, int n, char coll[JOB_ID_LEN + 1])
{
    char job[JOB_ID_LEN + 1];
    make_coll(d, norm, coll);
    upsert(coll, 0, n, "v1", false, job);
    learn(job, 1);
    embed_all();
}

/* A deleted collection leaves memory at once (search_forget), not when it would be evicted. */
Test(search, forget_releases_memory)
{
    char coll[JOB_ID_LEN + 1];
    fill(128, true, 200, coll);
    float q[128];
    gen(7, 128, q);
    struct search_engine *e = engine((int64_t)1 << 30, 1);
    cr_assert_eq(search_held_bytes(e), 0);
    run_check(e, coll, q, 1, 5, -1, 0, false);
    cr_assert_gt(search_held_bytes(e), 200 * 128 * 4, "the collection is held");
    search_forget(e, "00000000-0000-4000-8000-000000000000"); /* another: no effect */
    cr_assert_gt(search_held_bytes(e), 0);
    search_forget(e, coll);
    cr_assert_eq(search_held_bytes(e), 0, "forgotten");
    run_check(e, coll, q, 1, 5, -1, 0, false); /* and loaded again when asked */
    cr_assert_gt(search_held_bytes(e), 0);
    search_engine_free(e);
}

/* Results and order equal the reference, in memory (one and two threads, several queries at
 * once) and streamed from PostgreSQL (budget 0); ties (three documents with one vector) go to
 * the lower document id. */
Test(search, exact_results_and_ties_in_memory_and_streamed)
{
    char coll[JOB_ID_LEN + 1];
    fill(256, true, 3000, coll);
    cr_assert_gt(n_refs, 3000u, "some documents have several chunks");
    float *qs = malloc(sizeof(float) * 256 * 6);
    gen(424242, 256 * 5, qs);
    /* the sixth query is d00010's vector: d00010, d00011, d00012 tie at the top */
    const struct ref *tie = NULL;
    for (size_t i = 0; i < n_refs && !tie; i++)
        if (strcmp(refs[i].doc, "d00010") == 0)
            tie = &refs[i];
    cr_assert_not_null(tie);
    memcpy(qs + 256 * 5, tie->v, sizeof(float) * 256);
    struct search_engine *mem1 = engine((int64_t)1 << 30, 1);
    struct search_engine *mem2 = engine((int64_t)1 << 30, 2);
    struct search_engine *str = engine(0, 2);
    int ks[3] = {1, 10, 1000};
    for (int i = 0; i < 3; i++) {
        run_check(mem1, coll, qs, 6, ks[i], -1, 0, false);
        run_check(mem2, coll, qs, 6, ks[i], -1, 0, false);
        run_check(str, coll, qs + 256 * 5, 1, ks[i], -1, 0, true);
    }
    /* the tie, by name */
    char err[512];
    struct search_coll c;
    cr_assert_eq(search_coll_get(db.conn, key_id, coll, &c, err, sizeof(err)), SEARCH_OK);
    struct search_query q = {qs + 256 * 5, 1, 3, NULL, false, false, false};
    struct search_result res;
    cr_assert_eq(search_run(mem2, db.conn, &c, &q, &res, err, sizeof(err)), SEARCH_OK, "%s", err);
    cr_assert_str_eq(res.hits[0].doc_id, "d00010");
    cr_assert_str_eq(res.hits[1].doc_id, "d00011");
    cr_assert_str_eq(res.hits[2].doc_id, "d00012");
    cr_assert(res.hits[0].score == res.hits[1].score && res.hits[1].score == res.hits[2].score);
    cr_assert(fabs(res.hits[0].score - 1.0) < 1e-6);
    search_result_free(&res);
    search_engine_free(mem1);
    search_engine_free(mem2);
    search_engine_free(str);
    free(qs);
}

/* Filters on metadata: strings and numbers (2022.0 equals 2022), in memory and streamed; a
 * metadata-only change moves the version and the next query sees it. */
Test(search, metadata_filters)
{
    char coll[JOB_ID_LEN + 1], job[JOB_ID_LEN + 1];
    fill(128, true, 1500, coll);
    float q[128];
    gen(99, 128, q);
    struct search_engine *mem = engine((int64_t)1 << 30, 2);
    struct search_engine *str = engine(0, 1);
    run_check(mem, coll, q, 1, 50, 1, 0, false);
    run_check(mem, coll, q, 1, 50, 0, 2022, false);
    run_check(str, coll, q, 1, 50, 1, 2022, true);
    /* documents 0..299 swap their lang, metadata only */
    upsert(coll, 0, 300, "v1", true, job);
    cr_assert_eq(dbh_scalar(&db, "SELECT sum(documents_metadata) FROM jobs"), 300);
    for (size_t i = 0; i < n_refs; i++) {
        int num = to_int(refs[i].doc + 1);
        if (num < 300)
            refs[i].lang = !refs[i].lang;
    }
    run_check(mem, coll, q, 1, 50, 1, 0, false);
    run_check(str, coll, q, 1, 50, 1, 0, true);
    search_engine_free(mem);
    search_engine_free(str);
}

/* A document being re-embedded answers with its current version only, until the new one has
 * every vector; a deleted document never appears; another key's collection is not found. */
Test(search, current_versions_only)
{
    char coll[JOB_ID_LEN + 1], job[JOB_ID_LEN + 1], err[512];
    fill(128, true, 1000, coll);
    struct search_engine *e = engine((int64_t)1 << 30, 2);
    struct search_coll c;
    cr_assert_eq(search_coll_get(db.conn, other_key, coll, &c, err, sizeof(err)), SEARCH_NOT_FOUND);
    float q[128];
    gen(7, 128, q);
    run_check(e, coll, q, 1, 1000, -1, 0, false);
    /* d00005 (three chunks) and d00020 get new texts: pending, the old versions stay */
    upsert(coll, 5, 6, "v2", false, job);
    learn(job, 2);
    char job2[JOB_ID_LEN + 1];
    upsert(coll, 20, 21, "v2", false, job2);
    learn(job2, 2);
    run_check(e, coll, q, 1, 1000, -1, 0, false); /* learn left the new chunks not live */
    const struct ref *old = NULL, *fresh = NULL;
    for (size_t i = 0; i < n_refs; i++)
        if (strcmp(refs[i].doc, "d00020") == 0)
            *(strcmp(refs[i].job, job2) == 0 ? &fresh : &old) = &refs[i];
    embed_all();
    cr_assert(fresh && old && fresh->live && !old->live);
    run_check(e, coll, q, 1, 1000, -1, 0, false);
    run_check(e, coll, fresh->v, 1, 3, -1, 0, false);
    /* the old vector no longer finds d00020 first */
    cr_assert_eq(search_coll_get(db.conn, key_id, coll, &c, err, sizeof(err)), SEARCH_OK);
    struct search_query sq = {old->v, 1, 1, NULL, false, false, false};
    struct search_result res;
    cr_assert_eq(search_run(e, db.conn, &c, &sq, &res, err, sizeof(err)), SEARCH_OK, "%s", err);
    cr_assert(strcmp(res.hits[0].doc_id, "d00020") != 0 || res.hits[0].score < 0.9);
    search_result_free(&res);
    /* delete d00007: gone from every answer */
    cr_assert_eq(coll_doc_delete(db.conn, key_id, coll, "d00007", err, sizeof(err)), JOBS_OK);
    for (size_t i = 0; i < n_refs; i++)
        if (strcmp(refs[i].doc, "d00007") == 0)
            refs[i].live = false;
    run_check(e, coll, q, 1, 1000, -1, 0, false);
    search_engine_free(e);
}

/* 3072 dimensions (unit length as Google returns them, not normalised again) and 128, both
 * exact; a collection that does not normalise is scored by true cosine. */
Test(search, dimensions_3072_and_128_and_unnormalised)
{
    char coll[JOB_ID_LEN + 1];
    fill(3072, true, 400, coll);
    float *q = malloc(sizeof(float) * 3072);
    gen(5, 3072, q);
    struct search_engine *e = engine((int64_t)1 << 30, 2);
    struct search_engine *s = engine(0, 1);
    run_check(e, coll, q, 1, 20, -1, 0, false);
    run_check(s, coll, q, 1, 20, -1, 0, true);
    free(q);
    teardown();
    setup();
    fill(128, false, 800, coll);
    float q2[128];
    gen(6, 128, q2);
    run_check(e, coll, q2, 1, 20, -1, 0, false);
    search_engine_free(e);
    search_engine_free(s);
}

/* The load is index lookups only, in the collection's order without a full sort. */
Test(search, load_plans_use_indexes)
{
    char coll[JOB_ID_LEN + 1];
    fill(128, true, 500, coll);
    PGresult *r = PQexec(db.conn, "ANALYZE");
    PQclear(r);
    const char *sqls[2] = {load_plan_sql, load_rows_select};
    cr_assert(PQresultStatus(r = PQexec(db.conn, load_begin_sql)) == PGRES_COMMAND_OK, "%s",
              PQerrorMessage(db.conn));
    PQclear(r);
    const char *id[1] = {coll};
    r = PQexecParams(db.conn, load_rows_set_sql, 1, NULL, id, NULL, NULL, 0);
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQerrorMessage(db.conn));
    PQclear(r);
    for (int i = 0; i < 2; i++) {
        char sql[2048], plan[8192] = "";
        snprintf(sql, sizeof(sql), "EXPLAIN %s", sqls[i]);
        const char *v[1] = {coll};
        r = PQexecParams(db.conn, sql, i == 0 ? 1 : 0, NULL, i == 0 ? v : NULL, NULL, NULL, 0);
        cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQerrorMessage(db.conn));
        for (int k = 0; k < PQntuples(r); k++) {
            strncat(plan, PQgetvalue(r, k, 0), sizeof(plan) - strlen(plan) - 2);
            strncat(plan, "\n", sizeof(plan) - strlen(plan) - 1);
        }
        PQclear(r);
        cr_assert_null(strstr(plan, "Seq Scan"), "%s", plan);
        cr_assert_null(strstr(plan, "Hash Join"), "%s", plan);
        cr_assert_null(strstr(plan, "Bitmap"), "%s", plan);
        if (i == 1)
            cr_assert(strncmp(plan, "Sort", 4) != 0 && !strstr(plan, "->  Sort"),
                      "no full sort: %s", plan);
        cr_log_info("%s", plan);
    }
    PQclear(PQexec(db.conn, "ROLLBACK"));
}

/* A collection over the budget is abandoned mid-load and streamed (same answers); after a change
 * it is measured instead of loaded again. Two collections that each fit but not together take
 * turns in memory (least recently used out), answering right every time. */
Test(search, memory_budget_and_eviction)
{
    char a[JOB_ID_LEN + 1], err[512];
    fill(128, true, 2000, a); /* about 1.3 MB in memory */
    float q[128];
    gen(11, 128, q);
    struct search_engine *small = engine(300 * 1024, 2);
    run_check(small, a, q, 1, 30, -1, 0, true);
    run_check(small, a, q, 1, 30, 0, 0, true);
    cr_assert_eq(coll_doc_delete(db.conn, key_id, a, "d00004", err, sizeof(err)), JOBS_OK);
    for (size_t i = 0; i < n_refs; i++)
        if (strcmp(refs[i].doc, "d00004") == 0)
            refs[i].live = false;
    run_check(small, a, q, 1, 1000, -1, 0, true);
    search_engine_free(small);

    /* a second collection of the same size under another key */
    struct search_engine *two = engine(2 * 1024 * 1024, 2);
    run_check(two, a, q, 1, 30, -1, 0, false);
    char b[JOB_ID_LEN + 1], job[JOB_ID_LEN + 1];
    struct coll_spec s = {
        key_id, "other", "gemini-embedding-001", 128, "RETRIEVAL_DOCUMENT", "RETRIEVAL_QUERY", true,
        2000,   0};
    cr_assert_eq(coll_create(db.conn, &s, b, err, sizeof(err)), JOBS_OK, "%s", err);
    upsert(b, 5000, 7000, "w1", false, job);
    learn(job, 3);
    embed_all();
    /* the reference holds both collections' chunks: check a, then b by its own rows */
    struct search_coll cb;
    cr_assert_eq(search_coll_get(db.conn, key_id, b, &cb, err, sizeof(err)), SEARCH_OK);
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < n_refs; i++)
            refs[i].live = refs[i].live && to_int(refs[i].doc + 1) < 5000;
        run_check(two, a, q, 1, 30, -1, 0, false);
        struct search_query sq = {q, 1, 5, NULL, false, false, false};
        struct search_result res;
        cr_assert_eq(search_run(two, db.conn, &cb, &sq, &res, err, sizeof(err)), SEARCH_OK, "%s",
                     err);
        cr_assert(res.loaded, "b pushed a out, then a pushes b out");
        cr_assert_gt(res.rows, 2000);
        for (size_t i = 0; i < res.counts[0]; i++)
            cr_assert_geq(to_int(res.hits[i].doc_id + 1), 5000);
        search_result_free(&res);
        embed_all(); /* restores every live flag */
    }
    search_engine_free(two);
}
