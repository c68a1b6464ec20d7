/*
 * store.c: the simulator's state: batches, files, ids, the batch state
 * machine (computed lazily from timestamps) and duplicate-text accounting.
 */
#include "sim.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *const sim_state_names[SIM_STATE_COUNT] = {
    "BATCH_STATE_PENDING", "BATCH_STATE_RUNNING",   "BATCH_STATE_SUCCEEDED",
    "BATCH_STATE_FAILED",  "BATCH_STATE_CANCELLED", "BATCH_STATE_EXPIRED",
};

int64_t sim_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void sim_init(struct sim *sim, const struct sim_config *cfg)
{
    memset(sim, 0, sizeof(*sim));
    pthread_mutex_init(&sim->lock, NULL);
    sim->cfg = *cfg;
    sim->startup = cfg->s;
    sim->id_rng = cfg->s.seed ^ 0x5bd1e995a1b2c3d4ULL;
    sim->fault_rng = cfg->s.seed ^ 0x27d4eb2f165667c5ULL;
}

static void batch_free(struct sim_batch *b)
{
    sim_items_free(b->items, b->n_items);
    free(b->display_name);
    free(b->input_file);
    free(b->rendered);
    pthread_mutex_destroy(&b->render_lock);
    free(b);
}

static void file_free(struct sim_file *f)
{
    free(f->display_name);
    free(f->mime_type);
    buf_cleanup(&f->data);
    free(f);
}

/* Drop every batch and file reference held by the store. Caller holds the lock. */
static void store_clear(struct sim *sim)
{
    for (size_t i = 0; i < sim->n_batches; i++)
        if (--sim->batches[i]->refs == 0)
            batch_free(sim->batches[i]);
    for (size_t i = 0; i < sim->n_files; i++)
        if (--sim->files[i]->refs == 0)
            file_free(sim->files[i]);
    sim->n_batches = 0;
    sim->n_files = 0;
    free(sim->texts.keys);
    free(sim->texts.last_batch);
    memset(&sim->texts, 0, sizeof(sim->texts));
}

void sim_cleanup(struct sim *sim)
{
    pthread_mutex_lock(&sim->lock);
    store_clear(sim);
    free(sim->batches);
    free(sim->files);
    sim->batches = NULL;
    sim->files = NULL;
    pthread_mutex_unlock(&sim->lock);
    pthread_mutex_destroy(&sim->lock);
}

void sim_reset(struct sim *sim)
{
    pthread_mutex_lock(&sim->lock);
    store_clear(sim);
    memset(&sim->stats, 0, sizeof(sim->stats));
    sim->cfg.s = sim->startup;
    sim->next_seq = 0;
    sim->next_file_seq = 0;
    sim->id_rng = sim->startup.seed ^ 0x5bd1e995a1b2c3d4ULL;
    sim->fault_rng = sim->startup.seed ^ 0x27d4eb2f165667c5ULL;
    pthread_mutex_unlock(&sim->lock);
}

static void random_id(struct sim *sim, char *out, size_t len)
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    for (size_t i = 0; i < len; i++)
        out[i] = alphabet[sim_splitmix(&sim->id_rng) % 36];
    out[len] = '\0';
}

/* Identity of a text for duplicate accounting: everything Google bills for. */
static uint64_t item_identity(const struct sim_model *m, const struct sim_item *it)
{
    uint64_t h = sim_fnv1a(SIM_FNV_OFFSET, m->id, strlen(m->id));
    int32_t nums[2] = {it->task, it->dims};
    h = sim_fnv1a(h, nums, sizeof(nums));
    if (it->title)
        h = sim_fnv1a(h, it->title, strlen(it->title) + 1);
    h = sim_fnv1a(h, it->text, it->text_len);
    return h ? h : 1;
}

static bool textset_grow(struct sim_textset *t)
{
    size_t ncap = t->cap ? t->cap * 2 : 4096;
    uint64_t *keys = calloc(ncap, sizeof(*keys));
    uint64_t *last = calloc(ncap, sizeof(*last));
    if (!keys || !last) {
        free(keys);
        free(last);
        return false;
    }
    for (size_t i = 0; i < t->cap; i++) {
        if (!t->keys[i])
            continue;
        size_t j = t->keys[i] & (ncap - 1);
        while (keys[j])
            j = (j + 1) & (ncap - 1);
        keys[j] = t->keys[i];
        last[j] = t->last_batch[i];
    }
    free(t->keys);
    free(t->last_batch);
    t->keys = keys;
    t->last_batch = last;
    t->cap = ncap;
    return true;
}

/* Record one received text for batch seq; counts unique and cross-batch duplicates. */
static void textset_note(struct sim *sim, uint64_t key, uint64_t seq)
{
    struct sim_textset *t = &sim->texts;
    if ((t->n + 1) * 2 > t->cap && !textset_grow(t))
        return;
    size_t j = key & (t->cap - 1);
    while (t->keys[j] && t->keys[j] != key)
        j = (j + 1) & (t->cap - 1);
    if (!t->keys[j]) {
        t->keys[j] = key;
        t->last_batch[j] = seq;
        t->n++;
        sim->stats.texts_unique++;
    } else if (t->last_batch[j] != seq) {
        sim->stats.texts_duplicate++;
        t->last_batch[j] = seq;
    }
}

static bool contains(const char *hay, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    if (k == 0 || k > n)
        return false;
    for (size_t i = 0; i + k <= n; i++)
        if (hay[i] == needle[0] && memcmp(hay + i, needle, k) == 0)
            return true;
    return false;
}

/* Decide per-item outcomes (deterministic in seed, batch seq and index).
 * Over-long texts fail, or are cut to the limit for a model that truncates
 * (counted in texts_truncated). Under sim->lock. */
static void decide_items(struct sim *sim, struct sim_batch *b, const struct sim_settings *s)
{
    int64_t limit = sim_token_limit(s, b->model);
    bool cut = b->model->truncates && !s->long_input_error;
    for (size_t i = 0; i < b->n_items; i++) {
        struct sim_item *it = &b->items[i];
        it->tokens = sim_token_count(it->text, it->text_len);
        if (it->tokens > limit && cut) {
            it->text_len = sim_token_prefix(it->text, it->text_len, limit);
            it->tokens = sim_token_count(it->text, it->text_len);
            sim->stats.texts_truncated++;
        }
        uint64_t st = b->seed ^ (b->seq * 0x9e3779b97f4a7c15ULL) ^ ((uint64_t)i << 32);
        double roll = sim_unit(sim_splitmix(&st));
        if (it->tokens > limit) {
            it->error_code = 3;
            it->error_msg = "The input token count exceeds the maximum number of tokens allowed.";
        } else if (contains(it->text, it->text_len, s->fail_marker) || roll < s->item_error_rate) {
            it->error_code = (int)s->item_error_code;
            it->error_msg = it->error_code == 13 ? "An internal error has occurred. Please retry "
                                                   "or report in "
                                                   "https://developers.generativeai.google/guide/"
                                                   "troubleshooting"
                                                 : "Request failed.";
        }
        if (it->error_code)
            b->n_failed++;
    }
}

struct sim_batch *sim_batch_create(struct sim *sim, const struct sim_model *m,
                                   struct sim_batch_req *req)
{
    struct sim_batch *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    pthread_mutex_init(&b->render_lock, NULL);
    pthread_mutex_lock(&sim->lock);
    if (sim->n_batches == sim->cap_batches) {
        size_t ncap = sim->cap_batches ? sim->cap_batches * 2 : 64;
        struct sim_batch **nb = realloc(sim->batches, ncap * sizeof(*nb));
        if (!nb) {
            pthread_mutex_unlock(&sim->lock);
            pthread_mutex_destroy(&b->render_lock);
            free(b);
            return NULL;
        }
        sim->batches = nb;
        sim->cap_batches = ncap;
    }
    const struct sim_settings *s = &sim->cfg.s;
    b->seq = ++sim->next_seq;
    random_id(sim, b->id, SIM_BATCH_ID_LEN);
    b->model = m;
    b->display_name = req->display_name;
    b->priority = req->priority;
    b->input_file = req->file_name;
    b->file_output = req->file_name != NULL || s->inline_as_file;
    b->items = req->items;
    b->n_items = req->n_items;
    memset(req, 0, sizeof(*req));
    b->create_ns = sim_now_ns();
    b->pending_ns = s->pending_ms * 1000000LL;
    b->running_ns = s->running_ms * 1000000LL + s->per_request_us * 1000LL * (int64_t)b->n_items;
    b->seed = s->seed;
    b->shuffle = s->shuffle;
    b->omit_metadata = s->omit_metadata;
    uint64_t st = s->seed ^ (b->seq * 0xd1b54a32d192ed03ULL);
    double roll = sim_unit(sim_splitmix(&st));
    if (roll < s->batch_fail_rate)
        b->outcome = SIM_OUT_FAILED;
    else if (roll < s->batch_fail_rate + s->batch_expire_rate)
        b->outcome = SIM_OUT_EXPIRED;
    else if (roll < s->batch_fail_rate + s->batch_expire_rate + s->batch_stuck_rate)
        b->outcome = SIM_OUT_STUCK;
    else
        b->outcome = SIM_OUT_SUCCEEDED;
    decide_items(sim, b, s);
    sim->stats.creates_accepted++;
    sim->stats.texts_received += b->n_items;
    if (b->input_file) {
        sim->stats.file_batches++;
        sim->stats.texts_in_files += b->n_items;
    }
    for (size_t i = 0; i < b->n_items; i++)
        textset_note(sim, item_identity(m, &b->items[i]), b->seq);
    b->refs = 2; /* the store's and the caller's */
    sim->batches[sim->n_batches++] = b;
    pthread_mutex_unlock(&sim->lock);
    return b;
}

static struct sim_batch *find_batch(struct sim *sim, const char *id, size_t *idx)
{
    for (size_t i = 0; i < sim->n_batches; i++) {
        if (strcmp(sim->batches[i]->id, id) == 0) {
            if (idx)
                *idx = i;
            return sim->batches[i];
        }
    }
    return NULL;
}

struct sim_batch *sim_batch_get(struct sim *sim, const char *id)
{
    pthread_mutex_lock(&sim->lock);
    struct sim_batch *b = find_batch(sim, id, NULL);
    if (b)
        b->refs++;
    pthread_mutex_unlock(&sim->lock);
    return b;
}

void sim_batch_release(struct sim *sim, struct sim_batch *b)
{
    if (!b)
        return;
    pthread_mutex_lock(&sim->lock);
    bool last = --b->refs == 0;
    pthread_mutex_unlock(&sim->lock);
    if (last)
        batch_free(b);
}

enum sim_state sim_batch_state(const struct sim_batch *b, int64_t now, int64_t *update_ns,
                               int64_t *end_ns)
{
    int64_t run_start = b->create_ns + b->pending_ns;
    int64_t done_at = run_start + b->running_ns;
    *end_ns = 0;
    if (b->cancelled) {
        *update_ns = *end_ns = b->cancel_ns;
        return SIM_STATE_CANCELLED;
    }
    if (now < run_start) {
        *update_ns = b->create_ns;
        return SIM_STATE_PENDING;
    }
    if (b->outcome == SIM_OUT_STUCK || now < done_at) {
        *update_ns = run_start;
        return SIM_STATE_RUNNING;
    }
    *update_ns = *end_ns = done_at;
    switch (b->outcome) {
    case SIM_OUT_FAILED:
        return SIM_STATE_FAILED;
    case SIM_OUT_EXPIRED:
        return SIM_STATE_EXPIRED;
    default:
        return SIM_STATE_SUCCEEDED;
    }
}

bool sim_batch_cancel(struct sim *sim, const char *id)
{
    pthread_mutex_lock(&sim->lock);
    struct sim_batch *b = find_batch(sim, id, NULL);
    if (b) {
        int64_t now = sim_now_ns(), upd, end;
        enum sim_state st = sim_batch_state(b, now, &upd, &end);
        if (st == SIM_STATE_PENDING || st == SIM_STATE_RUNNING) {
            b->cancelled = true;
            b->cancel_ns = now;
        }
    }
    pthread_mutex_unlock(&sim->lock);
    return b != NULL;
}

bool sim_batch_delete(struct sim *sim, const char *id)
{
    size_t idx;
    pthread_mutex_lock(&sim->lock);
    struct sim_batch *b = find_batch(sim, id, &idx);
    bool last = false;
    if (b) {
        memmove(&sim->batches[idx], &sim->batches[idx + 1],
                (sim->n_batches - idx - 1) * sizeof(*sim->batches));
        sim->n_batches--;
        last = --b->refs == 0;
    }
    pthread_mutex_unlock(&sim->lock);
    if (last)
        batch_free(b);
    return b != NULL;
}

struct sim_file *sim_file_new(struct sim *sim, const char *display_name, const char *mime,
                              int64_t declared_size)
{
    struct sim_file *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    if ((display_name && !(f->display_name = strdup(display_name))) ||
        (mime && !(f->mime_type = strdup(mime)))) {
        file_free(f);
        return NULL;
    }
    buf_init(&f->data, (size_t)sim->cfg.max_body_bytes);
    f->declared_size = declared_size;
    f->create_ns = sim_now_ns();
    pthread_mutex_lock(&sim->lock);
    if (sim->n_files == sim->cap_files) {
        size_t ncap = sim->cap_files ? sim->cap_files * 2 : 16;
        struct sim_file **nf = realloc(sim->files, ncap * sizeof(*nf));
        if (!nf) {
            pthread_mutex_unlock(&sim->lock);
            file_free(f);
            return NULL;
        }
        sim->files = nf;
        sim->cap_files = ncap;
    }
    f->seq = ++sim->next_file_seq;
    random_id(sim, f->id, SIM_FILE_ID_LEN);
    random_id(sim, f->upload_id, sizeof(f->upload_id) - 1);
    f->refs = 2;
    sim->files[sim->n_files++] = f;
    pthread_mutex_unlock(&sim->lock);
    return f;
}

static struct sim_file *find_file(struct sim *sim, const char *id, const char *upload_id,
                                  size_t *idx)
{
    for (size_t i = 0; i < sim->n_files; i++) {
        struct sim_file *f = sim->files[i];
        if ((id && strcmp(f->id, id) == 0) || (upload_id && strcmp(f->upload_id, upload_id) == 0)) {
            if (idx)
                *idx = i;
            return f;
        }
    }
    return NULL;
}

struct sim_file *sim_file_get(struct sim *sim, const char *id)
{
    pthread_mutex_lock(&sim->lock);
    struct sim_file *f = find_file(sim, id, NULL, NULL);
    if (f)
        f->refs++;
    pthread_mutex_unlock(&sim->lock);
    return f;
}

struct sim_file *sim_file_by_upload(struct sim *sim, const char *upload_id)
{
    pthread_mutex_lock(&sim->lock);
    struct sim_file *f = find_file(sim, NULL, upload_id, NULL);
    if (f)
        f->refs++;
    pthread_mutex_unlock(&sim->lock);
    return f;
}

void sim_file_release(struct sim *sim, struct sim_file *f)
{
    if (!f)
        return;
    pthread_mutex_lock(&sim->lock);
    bool last = --f->refs == 0;
    pthread_mutex_unlock(&sim->lock);
    if (last)
        file_free(f);
}

bool sim_file_delete(struct sim *sim, const char *id)
{
    size_t idx;
    pthread_mutex_lock(&sim->lock);
    struct sim_file *f = find_file(sim, id, NULL, &idx);
    bool last = false;
    if (f) {
        memmove(&sim->files[idx], &sim->files[idx + 1],
                (sim->n_files - idx - 1) * sizeof(*sim->files));
        sim->n_files--;
        last = --f->refs == 0;
    }
    pthread_mutex_unlock(&sim->lock);
    if (last)
        file_free(f);
    return f != NULL;
}
