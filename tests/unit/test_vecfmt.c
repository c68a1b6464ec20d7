/* test_vecfmt.c: vectors formatted on a work pool give the text formatting them in place gives. */
#include "util/jsonw.h"
#include "util/numfmt.h"
#include "util/vecfmt.h"
#include "util/workpool.h"

#include <criterion/criterion.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

TestSuite(vecfmt, .timeout = 120);

/* A deterministic float32 little-endian vector, values of every magnitude. */
static void fill(unsigned char *le, int dims, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (int i = 0; i < dims; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        float f = (float)((int32_t)x) / (float)(UINT64_C(1) << (x % 40));
        uint32_t u;
        memcpy(&u, &f, 4);
        le[4 * i] = (unsigned char)u;
        le[4 * i + 1] = (unsigned char)(u >> 8);
        le[4 * i + 2] = (unsigned char)(u >> 16);
        le[4 * i + 3] = (unsigned char)(u >> 24);
    }
}

static const int dims_cycle[] = {768, 0, 1, 7, 3072, 128};

/* n rows "{"i":<i>,"v":<vector>}" separated by commas, built twice: in place
 * (want) and through v and pool (got, flushed every `every` rows). */
static void build(struct work_pool *pool, struct vecfmt *v, int n, int every, uint32_t seed,
                  struct buf *want, struct buf *got)
{
    unsigned char *le = malloc(3072 * 4);
    cr_assert(le);
    for (int i = 0; i < n; i++) {
        int dims = dims_cycle[(uint32_t)i % 6];
        fill(le, dims, seed + (uint32_t)i);
        cr_assert(buf_printf(want, "%s{\"i\":%d,\"v\":", i ? "," : "", i));
        cr_assert(jsonw_f32le_array(want, le, dims));
        cr_assert(buf_putc(want, '}'));
        cr_assert(buf_printf(&v->text, "%s{\"i\":%d,\"v\":", i ? "," : "", i));
        cr_assert(vecfmt_vector(v, le, dims));
        cr_assert(buf_putc(&v->text, '}'));
        if ((i + 1) % every == 0)
            cr_assert(vecfmt_flush(v, pool, got));
    }
    cr_assert(vecfmt_flush(v, pool, got));
    cr_assert_eq(vecfmt_pending(v), 0);
    free(le);
}

static void same_text(int threads, int every)
{
    struct work_pool *pool = threads < 0 ? NULL : work_pool_new(threads);
    cr_assert(threads < 0 || pool);
    struct vecfmt v;
    struct buf want, got;
    vecfmt_init(&v, SIZE_MAX / 4);
    buf_init(&want, SIZE_MAX / 4);
    buf_init(&got, SIZE_MAX / 4);
    build(pool, &v, 200, every, 7, &want, &got);
    cr_assert_eq(got.len, want.len, "%d threads, flush every %d: %zu bytes, want %zu", threads,
                 every, got.len, want.len);
    cr_assert(memcmp(got.data, want.data, want.len) == 0, "%d threads: the same text", threads);
    cr_assert_eq(got.data[got.len], '\0');
    buf_cleanup(&want);
    buf_cleanup(&got);
    vecfmt_cleanup(&v);
    work_pool_free(pool);
}

Test(vecfmt, same_text_as_formatting_in_place)
{
    same_text(-1, 32); /* no pool */
    same_text(0, 32);
    same_text(1, 32);
    same_text(3, 1);
    same_text(3, 32);
    same_text(2, 1000); /* one flush: more vectors than parts */
}

Test(vecfmt, text_without_vectors_and_empty_flushes)
{
    struct work_pool *pool = work_pool_new(1);
    struct vecfmt v;
    struct buf out;
    vecfmt_init(&v, 1024);
    buf_init(&out, 1024);
    cr_assert(vecfmt_flush(&v, pool, &out), "an empty batch flushes to nothing");
    cr_assert_eq(out.len, 0);
    cr_assert(buf_puts(&v.text, "{\"a\":1}"));
    cr_assert(vecfmt_flush(&v, pool, &out));
    cr_assert_str_eq(out.data, "{\"a\":1}");
    cr_assert_eq(v.text.len, 0, "the batch is empty after a flush");
    buf_cleanup(&out);
    vecfmt_cleanup(&v);
    work_pool_free(pool);
}

Test(vecfmt, past_the_cap_leaves_the_destination_unchanged)
{
    struct work_pool *pool = work_pool_new(1);
    struct vecfmt v;
    struct buf out;
    unsigned char le[16 * 4];
    fill(le, 16, 3);
    vecfmt_init(&v, 1024);
    buf_init(&out, 40);
    cr_assert(buf_puts(&out, "before"));
    cr_assert(buf_puts(&v.text, "x="));
    cr_assert(vecfmt_vector(&v, le, 16));
    cr_assert_not(vecfmt_flush(&v, pool, &out), "16 numbers do not fit in 34 bytes");
    cr_assert_str_eq(out.data, "before");
    cr_assert_eq(vecfmt_pending(&v), 0, "the batch is emptied all the same");
    cr_assert_eq(v.text.len, 0);
    buf_cleanup(&out);
    vecfmt_cleanup(&v);
    work_pool_free(pool);
}

/* Several requests flushing through one pool at once. */
struct caller {
    struct work_pool *pool;
    uint32_t seed;
    bool ok;
};

static void *call(void *arg)
{
    struct caller *c = arg;
    c->ok = true;
    for (int r = 0; r < 20 && c->ok; r++) {
        struct vecfmt v;
        struct buf want, got;
        vecfmt_init(&v, SIZE_MAX / 4);
        buf_init(&want, SIZE_MAX / 4);
        buf_init(&got, SIZE_MAX / 4);
        build(c->pool, &v, 40, 16, c->seed + (uint32_t)r * 100, &want, &got);
        c->ok = got.len == want.len && memcmp(got.data, want.data, want.len) == 0;
        buf_cleanup(&want);
        buf_cleanup(&got);
        vecfmt_cleanup(&v);
    }
    return NULL;
}

Test(vecfmt, concurrent_callers_share_one_pool)
{
    struct work_pool *pool = work_pool_new(2);
    struct caller c[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        c[i] = (struct caller){pool, (uint32_t)i * 1000, false};
        cr_assert_eq(pthread_create(&t[i], NULL, call, &c[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        cr_assert(c[i].ok, "caller %d got its own text, exactly", i);
    }
    work_pool_free(pool);
}

/* The work pool itself: every part runs once, on the pool's threads too. */
struct count_part {
    atomic_int *runs;
    pthread_t *by;
};

static void count(void *arg)
{
    struct count_part *p = arg;
    atomic_fetch_add(p->runs, 1);
    *p->by = pthread_self();
    struct timespec ts = {0, 2 * 1000 * 1000}; /* long enough for a pool thread to take some */
    nanosleep(&ts, NULL);
}

Test(vecfmt, work_pool_runs_every_part_once)
{
    enum { N = 40 };
    for (int threads = 0; threads <= 3; threads++) {
        struct work_pool *pool = work_pool_new(threads);
        cr_assert(pool);
        cr_assert_eq(work_pool_threads(pool), threads);
        atomic_int runs[N];
        pthread_t by[N];
        struct count_part parts[N];
        for (int i = 0; i < N; i++) {
            atomic_init(&runs[i], 0);
            parts[i] = (struct count_part){&runs[i], &by[i]};
        }
        work_pool_run(pool, count, parts, sizeof(parts[0]), N);
        int elsewhere = 0;
        for (int i = 0; i < N; i++) {
            cr_assert_eq(atomic_load(&runs[i]), 1, "%d threads: part %d ran once", threads, i);
            elsewhere += !pthread_equal(by[i], pthread_self());
        }
        if (threads == 0)
            cr_assert_eq(elsewhere, 0, "no pool threads: every part on the caller");
        else
            cr_assert_gt(elsewhere, 0, "%d threads: pool threads took parts", threads);
        work_pool_free(pool);
    }
}

/* Two batches in turn, as a results page fills them: one formatting on the
 * pool while the next is filled; the text comes out in order. */
Test(vecfmt, start_and_finish_overlap_in_order)
{
    struct work_pool *pool = work_pool_new(2);
    struct vecfmt vf[2];
    struct buf want, got;
    unsigned char *le = malloc(768 * 4);
    cr_assert(pool && le);
    vecfmt_init(&vf[0], SIZE_MAX / 4);
    vecfmt_init(&vf[1], SIZE_MAX / 4);
    buf_init(&want, SIZE_MAX / 4);
    buf_init(&got, SIZE_MAX / 4);
    int cur = 0;
    for (int i = 0; i < 300; i++) {
        fill(le, 768, (uint32_t)i);
        cr_assert(buf_printf(&want, "%d:", i) && jsonw_f32le_array(&want, le, 768));
        cr_assert(buf_printf(&vf[cur].text, "%d:", i) && vecfmt_vector(&vf[cur], le, 768));
        if ((i + 1) % 7 == 0) {
            if (vf[!cur].started)
                cr_assert(vecfmt_finish(&vf[!cur], &got));
            vecfmt_start(&vf[cur], pool);
            cur = !cur;
        }
    }
    if (vf[!cur].started)
        cr_assert(vecfmt_finish(&vf[!cur], &got));
    cr_assert(vecfmt_flush(&vf[cur], pool, &got));
    cr_assert_eq(got.len, want.len);
    cr_assert(memcmp(got.data, want.data, want.len) == 0, "the same text, in order");

    /* a batch dropped while the pool formats it: cleaned up without a leak or a race */
    cr_assert(vecfmt_vector(&vf[0], le, 768) && vecfmt_vector(&vf[0], le, 768));
    vecfmt_start(&vf[0], pool);
    vecfmt_cleanup(&vf[0]);
    vecfmt_cleanup(&vf[1]);
    buf_cleanup(&want);
    buf_cleanup(&got);
    free(le);
    work_pool_free(pool);
}
