/*
 * api_control.c: the simulator's own control API under /_sim/ (a prefix
 * Google does not use): counters, reset, and runtime settings.
 *
 *   GET  /_sim/stats    counters (requests, texts, uploads, files, faults) and batches by state
 *   POST /_sim/reset    forget batches, files and counters; restore start-up settings
 *   GET  /_sim/config   runtime settings
 *   PUT  /_sim/config   merge a JSON object of settings (POST works too)
 *   GET  /_sim/health   {"status":"ok"}
 */
#include "http.h"

#include <stdio.h>
#include <string.h>

static bool put_counter(struct buf *b, const char *name, uint64_t v, bool first)
{
    return buf_printf(b, "%s\"%s\":%llu", first ? "" : ",", name, (unsigned long long)v);
}

static void stats(struct sim *sim, struct reply *r)
{
    size_t by_state[SIM_STATE_COUNT] = {0};
    int64_t now = sim_now_ns(), upd, end;
    pthread_mutex_lock(&sim->lock);
    struct sim_stats s = sim->stats;
    for (size_t i = 0; i < sim->n_batches; i++)
        by_state[sim_batch_state(sim->batches[i], now, &upd, &end)]++;
    size_t n_batches = sim->n_batches, n_files = sim->n_files;
    pthread_mutex_unlock(&sim->lock);

    struct buf *b = &r->body;
    bool ok = buf_putc(b, '{') && put_counter(b, "requests", s.requests, true) &&
              put_counter(b, "creates", s.creates, false) &&
              put_counter(b, "creates_accepted", s.creates_accepted, false) &&
              put_counter(b, "file_batches", s.file_batches, false) &&
              put_counter(b, "texts_received", s.texts_received, false) &&
              put_counter(b, "texts_in_files", s.texts_in_files, false) &&
              put_counter(b, "texts_unique", s.texts_unique, false) &&
              put_counter(b, "texts_duplicate", s.texts_duplicate, false) &&
              put_counter(b, "texts_truncated", s.texts_truncated, false) &&
              put_counter(b, "task_fields_ignored", s.task_fields_ignored, false) &&
              put_counter(b, "gets", s.gets, false) && put_counter(b, "lists", s.lists, false) &&
              put_counter(b, "cancels", s.cancels, false) &&
              put_counter(b, "deletes", s.deletes, false) &&
              put_counter(b, "sync_calls", s.sync_calls, false) &&
              put_counter(b, "sync_texts", s.sync_texts, false) &&
              put_counter(b, "uploads_started", s.uploads_started, false) &&
              put_counter(b, "uploads_finalized", s.uploads_finalized, false) &&
              put_counter(b, "upload_pieces", s.upload_pieces, false) &&
              put_counter(b, "upload_queries", s.upload_queries, false) &&
              put_counter(b, "file_bytes_received", s.file_bytes_received, false) &&
              put_counter(b, "downloads", s.downloads, false) &&
              put_counter(b, "file_gets", s.file_gets, false) &&
              put_counter(b, "file_lists", s.file_lists, false) &&
              put_counter(b, "file_deletes", s.file_deletes, false) &&
              put_counter(b, "files_deleted", s.files_deleted, false) &&
              put_counter(b, "bytes_in", s.bytes_in, false) &&
              put_counter(b, "bytes_out", s.bytes_out, false) &&
              put_counter(b, "auth_failures", s.auth_failures, false) &&
              buf_puts(b, ",\"faults\":{") &&
              put_counter(b, "http_error", s.faults_http_error, true) &&
              put_counter(b, "latency", s.faults_latency, false) &&
              put_counter(b, "drop", s.faults_drop, false) &&
              put_counter(b, "malformed", s.faults_malformed, false) &&
              put_counter(b, "upload_cut", s.faults_upload_cut, false) && buf_putc(b, '}') &&
              put_counter(b, "batches", n_batches, false) &&
              put_counter(b, "files", n_files, false) && buf_puts(b, ",\"batches_by_state\":{");
    for (int i = 0; i < SIM_STATE_COUNT && ok; i++)
        ok = put_counter(b, sim_state_names[i], by_state[i], i == 0);
    ok = ok && buf_puts(b, "}}");
    if (!ok)
        reply_oom(r);
}

static void config_get(struct sim *sim, struct reply *r)
{
    pthread_mutex_lock(&sim->lock);
    json_object *o = sim_settings_to_json(&sim->cfg.s);
    pthread_mutex_unlock(&sim->lock);
    if (!buf_puts(&r->body, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN)))
        reply_oom(r);
    json_object_put(o);
}

static void config_put(struct sim *sim, struct route *rt, struct reply *r)
{
    struct sim_perr e = {0};
    json_object *o = sim_parse_json(rt->body, rt->body_len, &e);
    if (!o) {
        reply_perr(r, &e);
        return;
    }
    char err[300] = "";
    pthread_mutex_lock(&sim->lock);
    uint64_t old_seed = sim->cfg.s.seed;
    bool ok = sim_settings_apply_json(&sim->cfg.s, o, err, sizeof(err));
    if (ok && sim->cfg.s.seed != old_seed) {
        /* a new seed drives ids and HTTP fault decisions from here on, too */
        sim->id_rng = sim->cfg.s.seed ^ 0x5bd1e995a1b2c3d4ULL;
        sim->fault_rng = sim->cfg.s.seed ^ 0x27d4eb2f165667c5ULL;
    }
    pthread_mutex_unlock(&sim->lock);
    json_object_put(o);
    if (!ok) {
        reply_error(r, 400, "INVALID_ARGUMENT", err);
        return;
    }
    config_get(sim, r);
}

void api_control(struct sim *sim, struct MHD_Connection *c, const char *method, const char *path,
                 struct route *rt, struct reply *r)
{
    (void)c;
    bool get = strcmp(method, "GET") == 0;
    bool post = strcmp(method, "POST") == 0, put = strcmp(method, "PUT") == 0;
    if (strcmp(path, "stats") == 0 && get) {
        stats(sim, r);
    } else if (strcmp(path, "reset") == 0 && post) {
        sim_reset(sim);
        if (!buf_puts(&r->body, "{}"))
            reply_oom(r);
    } else if (strcmp(path, "config") == 0 && get) {
        config_get(sim, r);
    } else if (strcmp(path, "config") == 0 && (put || post)) {
        config_put(sim, rt, r);
    } else if (strcmp(path, "health") == 0 && get) {
        if (!buf_puts(&r->body, "{\"status\":\"ok\"}"))
            reply_oom(r);
    } else {
        reply_error(r, 404, "NOT_FOUND", "No such simulator control route.");
    }
}
