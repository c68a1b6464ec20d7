/*
 * search_bench.c: the search figures of bench/search.sh. Fills a collection
 * of --rows one-chunk documents (--dims, vectors pseudo-random, normalised
 * by the store as embedd stores them) through the store's own ingest and
 * result paths, then measures, --repeat times each:
 *
 *   load    the engine loading the collection from PostgreSQL into memory
 *           (a fresh engine, its first query), against COPY (the same
 *           SELECT, same snapshot settings) TO STDOUT (FORMAT binary) read
 *           through libpq and discarded;
 *   latency --queries queries one at a time: the engine's query as served
 *           minus HTTP and JSON (the collection's version read, then the scan
 *           on --threads threads), against OpenBLAS cblas_sgemv over the same
 *           matrix (OpenBLAS on --threads threads) followed by the same top-k
 *           selection (topk.h, exact scores);
 *   clients two client threads at once (each engine query may still split;
 *           OpenBLAS one thread per client), queries/s.
 *
 * Every engine answer is compared with the baseline's: the same chunks in the
 * same order with the same scores. Prints "key value" lines on stdout.
 */
#include "search/index.h"
#include "search/kernel.h"
#include "search/load.h"
#include "search/search.h"
#include "search/topk.h"
#include "store/collections.h"
#include "store/db.h"
#include "store/jobs_ingest.h"
#include "store/keys.h"
#include "store/migrate.h"
#include "store/pipeline.h"

#include <cblas.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void openblas_set_num_threads(int n);

static int rows = 100000, dims = 768, k = 10, n_queries = 200, repeat = 3, threads = 2;
static const char *url;
static int64_t key_id; /* the bench's API key */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void die(const char *what, const char *err)
{
    fprintf(stderr, "search_bench: %s: %s\n", what, err);
    exit(1);
}

static uint64_t mix(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A vector: 64 clusters of pseudo-random directions plus noise, as embeddings cluster. */
static void gen(uint64_t id, float *out)
{
    uint64_t c = mix(id) % 64;
    for (int i = 0; i < dims; i++) {
        double centre = ldexp((double)(mix(c * 100003 + (uint64_t)i) >> 11), -53) * 2 - 1;
        double noise = ldexp((double)(mix(id * 7919 + (uint64_t)i + 17) >> 11), -53) * 2 - 1;
        out[i] = (float)(centre + 0.8 * noise);
    }
}

static size_t size_of(const struct pipe_batch *b, const struct pipe_chunk *c, void *arg)
{
    (void)b;
    (void)arg;
    return (size_t)c->text_json_len + 100;
}

/* A collection of rows documents with their vectors, through the store. */
static void fill(PGconn *c, char coll[JOB_ID_LEN + 1])
{
    char err[1024], key[KEY_LEN + 1], job[JOB_ID_LEN + 1];
    int applied;
    if (!migrate_run(c, &applied, err, sizeof(err)) ||
        !keys_create(c, "bench", key, &key_id, err, sizeof(err)))
        die("set-up", err);
    struct coll_spec s = {key_id,
                          "bench",
                          "gemini-embedding-001",
                          dims,
                          "RETRIEVAL_DOCUMENT",
                          "RETRIEVAL_QUERY",
                          true,
                          2000,
                          0};
    if (coll_create(c, &s, coll, err, sizeof(err)) != JOBS_OK)
        die("collection", err);
    struct job_spec spec = {
        key_id, NULL, "gemini-embedding-001", "RETRIEVAL_DOCUMENT", dims, true, 0, 2000, 0, coll};
    struct jobs_ingest *in = jobs_ingest_begin(c, &spec, err, sizeof(err));
    if (!in)
        die("ingest", err);
    for (int i = 0; i < rows; i++) {
        char did[24], text[96];
        snprintf(did, sizeof(did), "doc-%07d", i);
        snprintf(text, sizeof(text), "Document %d of the search benchmark.", i);
        struct ingest_doc d = {did, strlen(did), NULL, 0, NULL, text, strlen(text)};
        size_t dup;
        if (jobs_ingest_add(in, &d, &dup, err, sizeof(err)) != JOBS_OK)
            die("ingest", err);
    }
    if (!jobs_ingest_finish(in, job, err, sizeof(err)))
        die("ingest", err);
    fprintf(stderr, "search_bench: ingested at %.1f s\n", now_ms() / 1e3);
    float *v = malloc(sizeof(float) * (size_t)dims * 2000);
    for (;;) {
        struct pipe_batch b;
        bool found;
        int64_t ms;
        struct pipe_claim_opts o = {.owner = "bench",
                                    .lease_ms = 600000,
                                    .max_items = 2000,
                                    .max_bytes = 1 << 28,
                                    .overhead_bytes = 50,
                                    .size = size_of,
                                    .inline_max_bytes = 1 << 28};
        if (!pipe_claim(c, &o, &b, &found, &ms, err, sizeof(err)))
            die("claim", err);
        if (!found)
            break;
        struct pipe_result *r = calloc(b.n_chunks, sizeof(*r));
        for (size_t i = 0; i < b.n_chunks; i++) {
            gen((uint64_t)b.chunks[i].seq, v + i * (size_t)dims);
            r[i] = (struct pipe_result){b.chunks[i].seq, v + i * (size_t)dims, dims, NULL, 8};
        }
        size_t st, rq, fl;
        double t0 = now_ms();
        if (!pipe_store_results(c, &b, r, b.n_chunks, 3, &st, &rq, &fl, err, sizeof(err)))
            die("store", err);
        fprintf(stderr, "search_bench: stored %zu in %.1f s (claim %lld ms)\n", b.n_chunks,
                (now_ms() - t0) / 1e3, (long long)ms);
        free(r);
        pipe_batch_free(&b);
        /* pipe_store_results counts each document's stored chunks with a subquery that is
         * planned on chunks_by_identity (partial: state = 2) while the statistics say few
         * chunks are stored, and then scans every stored chunk per document: fresh
         * statistics keep it on the primary key */
        PQclear(PQexec(c, "ANALYZE chunks"));
    }
    free(v);
    PQclear(PQexec(c, "VACUUM ANALYZE"));
}

/* The baseline load: the engine's own COPY (the same SELECT) TO STDOUT (FORMAT binary), in
 * the same snapshot settings, read through libpq and discarded. */
static double copy_binary(PGconn *c, const char *coll, int64_t *bytes)
{
    char err[1024];
    double t0 = now_ms();
    const char *v[1] = {coll};
    if (!db_exec(c, load_begin_sql, err, sizeof(err)))
        die("copy", err);
    PGresult *r = PQexecParams(c, load_rows_set_sql, 1, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        die("copy", PQerrorMessage(c));
    PQclear(r);
    r = PQexec(c, load_rows_sql);
    if (PQresultStatus(r) != PGRES_COPY_OUT)
        die("copy", PQerrorMessage(c));
    PQclear(r);
    char *buf;
    int n;
    *bytes = 0;
    while ((n = PQgetCopyData(c, &buf, 0)) > 0) {
        *bytes += n;
        PQfreemem(buf);
    }
    while ((r = PQgetResult(c)) != NULL)
        PQclear(r);
    PQclear(PQexec(c, "ROLLBACK"));
    return now_ms() - t0;
}

/* The engine's load: a fresh engine, one query (its load time as the engine measures it). */
static double engine_load(PGconn *c, const struct search_coll *coll, const float *q)
{
    char err[1024];
    struct search_opts o = {.memory_bytes = (int64_t)8 << 30, .threads = threads};
    struct search_engine *e = search_engine_new(&o, err, sizeof(err));
    if (!e)
        die("engine", err);
    struct search_query sq = {q, 1, k, NULL, false, false, false};
    struct search_result res;
    double t0 = now_ms();
    if (search_run(e, c, coll, &sq, &res, err, sizeof(err)) != SEARCH_OK)
        die("search", err);
    double ms = now_ms() - t0;
    if (!res.loaded || res.rows != rows)
        die("load", "the collection was not loaded whole");
    search_result_free(&res);
    search_engine_free(e);
    return ms;
}

/* The baseline query: sgemv over the matrix, then the engine's own top-k selection. */
static void baseline_query(const struct search_index *ix, const float *q, float *y,
                           struct topk_entry *ent, struct topk *t)
{
    size_t stride = ix->stride;
    float *qs = aligned_alloc(64, stride * sizeof(float));
    memset(qs, 0, stride * sizeof(float));
    memcpy(qs, q, (size_t)dims * sizeof(float));
    double qn = kernel_norm_exact(qs, stride);
    float *unit = aligned_alloc(64, stride * sizeof(float));
    memcpy(unit, qs, stride * sizeof(float));
    if (!search_normalize(unit, dims))
        die("query", "zero vector");
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)ix->n_rows, (int)stride, 1.0f, ix->vecs,
                (int)stride, unit, 1, 0.0f, y, 1);
    topk_init(t, ent, k, kernel_delta(dims));
    for (size_t r = 0; r < ix->n_rows; r++) {
        if (!topk_admits(t, y[r] * ix->inv_norm[r]) || ix->inv_norm[r] == 0.0f)
            continue;
        (void)topk_push(t, index_exact_score(qs, qn, ix->vecs + r * stride, stride), r);
    }
    topk_sort(t);
    free(qs);
    free(unit);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double p)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    int i = (int)ceil(p * n) - 1;
    return v[i < 0 ? 0 : i];
}

/* One query's answer: document ids (borrowed from the engine's result copy or the index) and
 * scores, best first. */
struct answer {
    int n;
    char **ids; /* owned copies */
    double *scores;
};

struct shared {
    const struct search_index *ix;
    struct search_engine *e;
    const struct search_coll *coll;
    const float *queries;
    int from, to;
    bool engine;
    double *ms;
    struct answer *answers;
};

static void keep(struct answer *a, int n, const char *const *ids, const double *scores)
{
    for (int i = 0; i < a->n; i++)
        free(a->ids[i]);
    free(a->ids);
    free(a->scores);
    a->n = n;
    a->ids = malloc(sizeof(char *) * (size_t)(n ? n : 1));
    a->scores = malloc(sizeof(double) * (size_t)(n ? n : 1));
    for (int i = 0; i < n; i++) {
        a->ids[i] = strdup(ids[i]);
        a->scores[i] = scores[i];
    }
}

/* Queries [from, to) through the engine (on its own connection) or the baseline; each answer
 * is kept (after its time is taken) for the comparison. */
static void *client(void *arg)
{
    struct shared *s = arg;
    char err[1024];
    PGconn *c = s->engine ? db_connect(url, err, sizeof(err)) : NULL;
    if (s->engine && !c)
        die("connect", err);
    float *y = malloc(sizeof(float) * s->ix->n_rows);
    struct topk_entry *ent = malloc(sizeof(*ent) * (size_t)k);
    const char **ids = malloc(sizeof(char *) * (size_t)k);
    double *scores = malloc(sizeof(double) * (size_t)k);
    for (int i = s->from; i < s->to; i++) {
        const float *q = s->queries + (size_t)i * (size_t)dims;
        double t0 = now_ms();
        int n = 0;
        if (s->engine) {
            struct search_coll coll;
            if (search_coll_get(c, key_id, s->coll->id, &coll, err, sizeof(err)) != SEARCH_OK)
                die("head", err);
            struct search_query sq = {q, 1, k, NULL, false, false, false};
            struct search_result res;
            if (search_run(s->e, c, &coll, &sq, &res, err, sizeof(err)) != SEARCH_OK)
                die("search", err);
            s->ms[i] = now_ms() - t0;
            n = (int)res.counts[0];
            for (int j = 0; j < n; j++) {
                ids[j] = res.hits[j].doc_id;
                scores[j] = res.hits[j].score;
            }
            keep(&s->answers[i], n, ids, scores);
            search_result_free(&res);
        } else {
            struct topk t;
            baseline_query(s->ix, q, y, ent, &t);
            s->ms[i] = now_ms() - t0;
            n = t.n;
            for (int j = 0; j < n; j++) {
                ids[j] = index_doc_id(s->ix, s->ix->rows[t.e[j].row].doc);
                scores[j] = t.e[j].score;
            }
            keep(&s->answers[i], n, ids, scores);
        }
    }
    free(y);
    free(ent);
    free(ids);
    free(scores);
    if (c)
        PQfinish(c);
    return NULL;
}

/* Run the queries with n_clients threads; returns queries/s; fills ms and answers. */
static double run(struct shared *proto, int n_clients, double *ms, struct answer *answers)
{
    pthread_t th[2];
    struct shared s[2];
    double t0 = now_ms();
    for (int i = 0; i < n_clients; i++) {
        s[i] = *proto;
        s[i].from = n_queries * i / n_clients;
        s[i].to = n_queries * (i + 1) / n_clients;
        s[i].ms = ms;
        s[i].answers = answers;
        pthread_create(&th[i], NULL, client, &s[i]);
    }
    for (int i = 0; i < n_clients; i++)
        pthread_join(th[i], NULL);
    return n_queries / ((now_ms() - t0) / 1e3);
}

/* Queries whose answers differ (ids, order or scores). */
static int64_t differing(const struct answer *a, const struct answer *b)
{
    int64_t d = 0;
    for (int i = 0; i < n_queries; i++) {
        bool same = a[i].n == b[i].n;
        for (int j = 0; same && j < a[i].n; j++)
            same = strcmp(a[i].ids[j], b[i].ids[j]) == 0 && a[i].scores[j] == b[i].scores[j];
        d += !same;
    }
    return d;
}

static int arg_int(int argc, char **argv, const char *name, int dflt)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return (int)strtol(argv[i + 1], NULL, 10);
    return dflt;
}

int main(int argc, char **argv)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "--url") == 0)
            url = argv[i + 1];
    rows = arg_int(argc, argv, "--rows", rows);
    dims = arg_int(argc, argv, "--dims", dims);
    k = arg_int(argc, argv, "--k", k);
    n_queries = arg_int(argc, argv, "--queries", n_queries);
    repeat = arg_int(argc, argv, "--repeat", repeat);
    threads = arg_int(argc, argv, "--threads", threads);
    if (!url)
        die("usage", "search_bench --url URL [--rows N --dims D --k K --queries Q --repeat R]");
    char err[1024], coll_id[JOB_ID_LEN + 1];
    PGconn *c = db_connect(url, err, sizeof(err));
    if (!c)
        die("connect", err);
    double t0 = now_ms();
    PGresult *prev = PQexec(c, arg_int(argc, argv, "--reuse", 0)
                                   ? "SELECT id, api_key_id FROM collections WHERE name = 'bench'"
                                   : "SELECT 1 WHERE false");
    if (PQresultStatus(prev) == PGRES_TUPLES_OK && PQntuples(prev) == 1) {
        snprintf(coll_id, sizeof(coll_id), "%s", PQgetvalue(prev, 0, 0));
        key_id = db_int(PQgetvalue(prev, 0, 1));
    } else {
        fill(c, coll_id);
        fprintf(stderr, "search_bench: filled %d x %d in %.1f s\n", rows, dims,
                (now_ms() - t0) / 1e3);
    }
    PQclear(prev);
    struct search_coll coll;
    if (search_coll_get(c, key_id, coll_id, &coll, err, sizeof(err)) != SEARCH_OK)
        die("head", err);
    /* queries: a document's vector with noise, so that near neighbours exist */
    float *queries = malloc(sizeof(float) * (size_t)dims * (size_t)n_queries);
    for (int i = 0; i < n_queries; i++) {
        float *q = queries + (size_t)i * (size_t)dims;
        gen(mix((uint64_t)i) % (uint64_t)rows, q);
        for (int j = 0; j < dims; j++)
            q[j] += (float)(ldexp((double)(mix((uint64_t)i * 31 + (uint64_t)j) >> 11), -53) - 0.5);
    }
    /* the baseline's matrix: the collection as the engine loads it */
    bool found;
    int64_t version;
    if (!load_begin(c, coll_id, &found, &version, err, sizeof(err)) || !found)
        die("load", err);
    struct search_index *ix = index_new(version, dims, SIZE_MAX);
    if (!ix || !load_rows(c, coll_id, index_add_row, ix, err, sizeof(err)) || !index_finish(ix))
        die("load", err);
    load_end(c);
    printf("rows %zu\nbytes %zu\n", ix->n_rows, ix->bytes);

    for (int r = 0; r < repeat; r++) {
        int64_t bytes;
        printf("load_engine_s %.4f\n", engine_load(c, &coll, queries) / 1e3);
        printf("load_copy_s %.4f\n", copy_binary(c, coll_id, &bytes) / 1e3);
        printf("copy_bytes %lld\n", (long long)bytes);
    }
    struct search_opts o = {.memory_bytes = (int64_t)8 << 30, .threads = threads};
    struct search_engine *e = search_engine_new(&o, err, sizeof(err));
    if (!e)
        die("engine", err);
    struct shared proto = {ix, e, &coll, queries, 0, 0, true, NULL, NULL};
    double *ms = malloc(sizeof(double) * (size_t)n_queries);
    struct answer *mine = calloc((size_t)n_queries, sizeof(*mine));
    struct answer *blas = calloc((size_t)n_queries, sizeof(*blas));
    run(&proto, 1, ms, mine); /* warm-up: the engine loads its copy */
    for (int r = 0; r < repeat; r++) {
        proto.engine = true;
        double qps = run(&proto, 1, ms, mine);
        printf("engine_qps %.2f\nengine_p50_ms %.3f\n", qps, pct(ms, n_queries, 0.5));
        printf("engine_p99_ms %.3f\n", pct(ms, n_queries, 0.99));
        proto.engine = false;
        openblas_set_num_threads(threads);
        qps = run(&proto, 1, ms, blas);
        printf("blas_qps %.2f\nblas_p50_ms %.3f\n", qps, pct(ms, n_queries, 0.5));
        printf("blas_p99_ms %.3f\nmismatches %lld\n", pct(ms, n_queries, 0.99),
               (long long)differing(mine, blas));
        proto.engine = true;
        qps = run(&proto, 2, ms, mine);
        printf("engine2_qps %.2f\n", qps);
        proto.engine = false;
        openblas_set_num_threads(1);
        qps = run(&proto, 2, ms, blas);
        printf("blas2_qps %.2f\nmismatches %lld\n", qps, (long long)differing(mine, blas));
        fflush(stdout);
    }
    for (int i = 0; i < n_queries; i++) {
        keep(&mine[i], 0, NULL, NULL);
        keep(&blas[i], 0, NULL, NULL);
        free(mine[i].ids);
        free(mine[i].scores);
        free(blas[i].ids);
        free(blas[i].scores);
    }
    free(mine);
    free(blas);
    free(ms);
    free(queries);
    search_engine_free(e);
    index_release(ix);
    PQfinish(c);
    return 0;
}
