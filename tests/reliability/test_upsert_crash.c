/*
 * test_upsert_crash.c: scenario 10. A collection is kept current by a
 * sequence of upsert jobs (each edits about a tenth of its documents, deletes
 * a few and adds or re-adds a few), and embedd serve is killed with SIGKILL at
 * seeded moments of every job: during its ingest, between a batch's intent
 * and Google's answer, while batches are polled, and while a succeeded
 * batch's vectors (and with them new document versions) are being stored.
 *
 * At the end, besides the audit every scenario runs (nothing lost, every
 * vector the simulator's, nothing paid twice), every document the accepted
 * jobs say should exist has exactly one current version: the latest one
 * written, complete (every chunk has its vector), with nothing left half
 * switched; deleted documents are gone; each job's document counts say what
 * it did; the collection's vectors are exactly its current documents'.
 */
#include "rel.h"

#include "util/buf.h"

#include <criterion/criterion.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct rel R;

static void nap(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static uint64_t rng = 20261206;
static int rnd(int n)
{
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (int)((rng >> 33) % (uint64_t)n);
}

static void setup(void)
{
    static const char *const sf[] = {"--pending-ms=150", "--running-ms=300", "--latency-ms=150",
                                     "--fault-scope=create", NULL};
    const char *const ef[] = {"--workers=3",
                              "--lease-ms=1500",
                              "--poll-min-ms=20",
                              "--poll-max-ms=200",
                              "--sync-max-texts=0",
                              "--file-batch-max-requests=0",
                              "--batch-max-requests=150",
                              NULL};
    rel_start(&R, 1, false, sf, ef);
}

static void teardown(void)
{
    rel_stop(&R);
}

TestSuite(upsert_crash, .init = setup, .fini = teardown, .timeout = 3000);

/* The corpus: slot i is document "d<i>" (ids past the base are additions);
 * rev 0 means absent. Every (rev, slot, sentence) makes a unique text, so no
 * two jobs share a text and any text Google sees twice was paid twice. */
struct corpus {
    int slots, used;
    int *rev;
};

static void put_doc(struct buf *b, int slot, int rev, bool first)
{
    cr_assert(buf_printf(b,
                         "%s{\"id\":\"d%d\",\"title\":\"Doc %d\",\"metadata\":{\"rev\":%d},"
                         "\"text\":\"",
                         first ? "" : ",", slot, slot, rev));
    for (int s = 0; s < 3; s++) {
        cr_assert(buf_printf(b, "U%d-%d-%d", rev, slot, s));
        uint64_t x = (uint64_t)rev * 7919u + (uint64_t)slot * 104729u + (uint64_t)s + 1;
        static const char *const w[] = {"river",  "stone",  "lantern", "meadow",
                                        "copper", "harbor", "quartz",  "ember"};
        for (int k = 0; k < 12; k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            cr_assert(buf_printf(b, " %s", w[x % 8]));
        }
        cr_assert(buf_puts(b, ". "));
    }
    cr_assert(buf_puts(b, "\"}"));
}

/* A job body for round `round` into coll: every present document, and the
 * ids in del[0..ndel). */
static char *job_body(const char *coll, const char *name, const struct corpus *c, const int *del,
                      int ndel)
{
    struct buf b;
    buf_init(&b, 1 << 26);
    cr_assert(buf_printf(&b,
                         "{\"collection\":\"%s\",\"display_name\":\"%s\",\"chunking\":"
                         "{\"max_chars\":220,\"overlap_chars\":0},\"delete\":[",
                         coll, name));
    for (int i = 0; i < ndel; i++)
        cr_assert(buf_printf(&b, "%s\"d%d\"", i ? "," : "", del[i]));
    cr_assert(buf_puts(&b, "],\"documents\":["));
    bool first = true;
    for (int i = 0; i < c->used; i++)
        if (c->rev[i] > 0) {
            put_doc(&b, i, c->rev[i], first);
            first = false;
        }
    cr_assert(buf_puts(&b, "]}"));
    return b.data;
}

struct post {
    const char *body;
    long status;
    char answer[400]; /* the start of the response body, for a failure's message */
    pthread_t t;
};

static void *post_thread(void *arg)
{
    struct post *p = arg;
    struct simh_resp resp;
    rel_call(&R, 0, "POST", "/v1/jobs", p->body, &resp);
    p->status = resp.curl_code ? 0 : resp.status;
    snprintf(p->answer, sizeof(p->answer), "%s", resp.body ? resp.body : "");
    simh_resp_free(&resp);
    return NULL;
}

/* The id of the job named name, or "" when there is none. */
static void job_named(const char *name, char id[64])
{
    const char *v[1] = {name};
    PGresult *r = PQexecParams(R.db.conn, "SELECT id::text FROM jobs WHERE display_name = $1", 1,
                               NULL, v, NULL, NULL, 0);
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK);
    snprintf(id, 64, "%s", PQntuples(r) ? PQgetvalue(r, 0, 0) : "");
    PQclear(r);
}

struct expect {
    char id[64];
    int new_, updated, unchanged, deleted;
};

Test(upsert_crash, kill9_during_upserts_leaves_one_complete_version_each)
{
    int base = rel_pick(300, 3000), rounds = rel_pick(4, 8), kills_per_round = rel_pick(3, 5);
    struct corpus c = {base + rounds * 10, base, NULL};
    c.rev = calloc((size_t)c.slots, sizeof(int));
    for (int i = 0; i < base; i++)
        c.rev[i] = 1;
    json_object *co = rel_api(&R, 0, "POST", "/v1/collections",
                              "{\"name\":\"kb\",\"output_dimensionality\":256,"
                              "\"chunking\":{\"max_chars\":220,\"overlap_chars\":0}}",
                              201, NULL);
    char coll[64];
    snprintf(coll, sizeof(coll), "%s", simh_str(co, "id"));
    json_object_put(co);

    struct expect *ex = calloc((size_t)rounds + 1, sizeof(*ex));
    int by_phase[4] = {0, 0, 0, 0};
    static const char *const phases[4] = {"ingest", "intent", "poll", "store"};
    int *del = calloc((size_t)c.slots, sizeof(int));
    for (int round = 1; round <= rounds; round++) {
        /* what this round does, decided before it is sent (and sent again
         * unchanged when a kill cut its POST off) */
        int *next = malloc(sizeof(int) * (size_t)c.slots);
        memcpy(next, c.rev, sizeof(int) * (size_t)c.slots);
        int used = c.used, ndel = 0;
        struct expect e = {"", 0, 0, 0, 0};
        if (round == 1) {
            e.new_ = base;
        } else {
            for (int i = 0; i < c.used; i++) {
                if (c.rev[i] == 0) {
                    if (rnd(3) == 0) /* re-added after a delete */
                        next[i] = round, e.new_++;
                    continue;
                }
                int roll = rnd(100);
                if (roll < 10)
                    next[i] = round, e.updated++;
                else if (roll < 12)
                    next[i] = 0, del[ndel++] = i, e.deleted++;
                else
                    e.unchanged++;
            }
            for (int k = 0; k < 3 && used < c.slots; k++)
                next[used++] = round, e.new_++;
        }
        /* the POST, killed while in flight until one is accepted (first try
         * always killed when it can be, later ones left alone) */
        char name[64];
        for (int attempt = 0;; attempt++) {
            snprintf(name, sizeof(name), "upsert-r%d-a%d", round, attempt);
            struct corpus nc = {c.slots, used, next};
            char *body = job_body(coll, name, &nc, del, ndel);
            struct post p = {body, 0, "", 0};
            pthread_create(&p.t, NULL, post_thread, &p);
            bool kill_it = attempt < 2 && rnd(2) == 0;
            if (kill_it) {
                nap(1 + rnd(round == 1 ? 60 : 25));
                rel_kill9(&R, 0);
            }
            pthread_join(p.t, NULL);
            free(body);
            job_named(name, e.id);
            if (kill_it) {
                rel_spawn(&R, 0);
                if (!e.id[0]) {
                    by_phase[0]++; /* died mid-ingest: nothing of it stored */
                    continue;
                }
            } else {
                cr_assert(p.status == 202, "round %d: POST answered %ld: %s", round, p.status,
                          p.answer);
            }
            break;
        }
        free(c.rev);
        c.rev = next;
        c.used = used;
        ex[round] = e;
        /* kills while the round's job runs */
        for (int k = 0; k < kills_per_round; k++) {
            int ph = 1 + rnd(3);
            if (!rel_wait_phase(&R, phases[ph]))
                break;
            nap(rnd(ph == 1 ? 120 : 15));
            rel_kill9(&R, 0);
            by_phase[ph]++;
            rel_spawn(&R, 0);
        }
        rel_wait_terminal(&R, rel_pick(300000, 1200000));
    }

    /* the audit of every scenario */
    struct rel_audit a;
    rel_audit(&R, false, &a);
    cr_assert_eq(a.failed, 0, "no chunk failed (there were no upstream faults)");

    /* each accepted job did what its round asked */
    for (int round = 1; round <= rounds; round++) {
        char path[128];
        snprintf(path, sizeof(path), "/v1/jobs/%s", ex[round].id);
        json_object *j = rel_api(&R, 0, "GET", path, NULL, 200, NULL);
        cr_assert_str_eq(simh_str(j, "state"), "succeeded", "round %d", round);
        cr_assert_eq(json_object_get_int(simh_get(j, "documents.new")), ex[round].new_,
                     "round %d: new", round);
        cr_assert_eq(json_object_get_int(simh_get(j, "documents.updated")), ex[round].updated,
                     "round %d: updated", round);
        cr_assert_eq(json_object_get_int(simh_get(j, "documents.unchanged")), ex[round].unchanged,
                     "round %d: unchanged", round);
        cr_assert_eq(json_object_get_int(simh_get(j, "documents.deleted")), ex[round].deleted,
                     "round %d: deleted", round);
        json_object_put(j);
    }

    /* every document: exactly one current version, the latest, complete */
    const char *v[1] = {coll};
    PGresult *res = PQexecParams(
        R.db.conn,
        "SELECT cd.doc_id, cd.version, cd.next_job_id IS NULL, cd.error IS NULL,"
        " (cd.metadata->>'rev')::int, d.chunks_done = d.n_chunks, d.n_chunks,"
        " (SELECT count(*) FROM chunks ch WHERE ch.job_id = cd.job_id"
        "   AND ch.doc_index = cd.doc_index AND ch.state = 2 AND ch.embedding IS NOT NULL),"
        " (SELECT ch.text FROM chunks ch WHERE ch.job_id = cd.job_id"
        "   AND ch.doc_index = cd.doc_index AND ch.chunk_index = 0)"
        " FROM collection_documents cd JOIN documents d"
        "   ON d.job_id = cd.job_id AND d.doc_index = cd.doc_index"
        " WHERE cd.collection_id = $1 AND cd.version >= 1",
        1, NULL, v, NULL, NULL, 0);
    cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s", PQerrorMessage(R.db.conn));
    int present = 0;
    for (int i = 0; i < c.used; i++)
        present += c.rev[i] > 0;
    cr_assert_eq(PQntuples(res), present, "current documents: %d, want %d", PQntuples(res),
                 present);
    long chunks = 0;
    for (int r = 0; r < PQntuples(res); r++) {
        const char *doc = PQgetvalue(res, r, 0);
        int slot = (int)strtol(doc + 1, NULL, 10);
        cr_assert(slot >= 0 && slot < c.used && c.rev[slot] > 0, "%s should not exist", doc);
        cr_assert_str_eq(PQgetvalue(res, r, 2), "t", "%s: a next version left over", doc);
        cr_assert_str_eq(PQgetvalue(res, r, 3), "t", "%s: an error left", doc);
        cr_assert_eq((int)strtol(PQgetvalue(res, r, 4), NULL, 10), c.rev[slot],
                     "%s: the latest revision", doc);
        cr_assert_str_eq(PQgetvalue(res, r, 5), "t", "%s: incomplete current version", doc);
        int n = (int)strtol(PQgetvalue(res, r, 6), NULL, 10);
        cr_assert_eq((int)strtol(PQgetvalue(res, r, 7), NULL, 10), n,
                     "%s: a chunk without its vector", doc);
        char want[64];
        snprintf(want, sizeof(want), "U%d-%d-0", c.rev[slot], slot);
        cr_assert(strncmp(PQgetvalue(res, r, 8), want, strlen(want)) == 0,
                  "%s: current text is not revision %d's", doc, c.rev[slot]);
        chunks += n;
    }
    PQclear(res);
    cr_assert_eq(dbh_scalar(&R.db, "SELECT count(*) FROM collection_documents"
                                   " WHERE next_job_id IS NOT NULL OR version = 0"),
                 0, "no half-switched or never-current document row");

    /* the collection's vectors are its current documents' chunks */
    char path[256];
    snprintf(path, sizeof(path), "/v1/collections/%s", coll);
    json_object *cj = rel_api(&R, 0, "GET", path, NULL, 200, NULL);
    cr_assert_eq(json_object_get_int(simh_get(cj, "documents.current")), present);
    json_object_put(cj);
    long vectors = 0;
    char cursor[128] = "";
    for (int pages = 0; pages < 1000; pages++) {
        snprintf(path, sizeof(path), "/v1/collections/%s/vectors?limit=1000%s%s", coll,
                 cursor[0] ? "&cursor=" : "", cursor);
        json_object *o = rel_api(&R, 0, "GET", path, NULL, 200, NULL);
        vectors += (long)json_object_array_length(simh_get(o, "vectors"));
        json_object *nc = simh_get(o, "next_cursor");
        bool more = nc && json_object_is_type(nc, json_type_string);
        if (more)
            snprintf(cursor, sizeof(cursor), "%s", json_object_get_string(nc));
        json_object_put(o);
        if (!more)
            break;
    }
    cr_assert_eq(vectors, chunks, "vectors served %ld, current chunks %ld", vectors, chunks);
    cr_assert_geq(R.kills, rel_pick(6, 16), "kills delivered: %d", R.kills);

    char fig[1024], aj[512];
    rel_audit_json(&a, aj, sizeof(aj));
    snprintf(fig, sizeof(fig),
             "{\"rounds\":%d,\"documents\":%d,\"kills\":%d,\"kills_ingest\":%d,"
             "\"kills_intent\":%d,\"kills_poll\":%d,\"kills_store\":%d,\"current_chunks\":%ld,%s}",
             rounds, present, R.kills, by_phase[0], by_phase[1], by_phase[2], by_phase[3], chunks,
             aj);
    fprintf(stderr, "upsert_crash: %s\n", fig);
    rel_report("10. collection upserts under kill -9",
               "kills during ingest, intent, poll and store of upsert jobs; every document one "
               "complete current version (the latest); deletes gone; audit",
               "pass", fig);
    free(del);
    free(c.rev);
    free(ex);
}
