/* embed.c: query vectors in a collection's space through Google's interactive API (see search.h).
 */
#include "search/search.h"

#include "chunker/budget.h"
#include "chunker/chunker.h"
#include "gemini/request.h"
#include "models.h"
#include "search/engine_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool search_coll_normalises(const struct search_coll *c)
{
    return models_normalises(c->model, c->dims, c->normalize);
}

bool search_off_unit(const float *v, int dims)
{
    double s = 0;
    for (int i = 0; i < dims; i++)
        s += (double)v[i] * (double)v[i];
    return fabs(s - 1.0) > 1e-3;
}

bool search_normalize(float *v, int dims)
{
    double s = 0;
    for (int i = 0; i < dims; i++)
        s += (double)v[i] * (double)v[i];
    double norm = sqrt(s);
    if (!(norm > 0) || !isfinite(norm))
        return false;
    for (int i = 0; i < dims; i++)
        v[i] = (float)((double)v[i] / norm);
    return true;
}

/* A client for this call: an idle one, or a new one (one per concurrent call). */
static struct gem_client *take_client(struct search_engine *e)
{
    struct gem_client *g = NULL;
    pthread_mutex_lock(&e->gem_lock);
    if (e->n_gem_idle > 0)
        g = e->gem_idle[--e->n_gem_idle];
    pthread_mutex_unlock(&e->gem_lock);
    return g ? g : gem_client_new(&e->gem);
}

static void give_client(struct search_engine *e, struct gem_client *g)
{
    pthread_mutex_lock(&e->gem_lock);
    if (e->n_gem_idle == e->gem_cap) {
        size_t cap = e->gem_cap ? e->gem_cap * 2 : 4;
        struct gem_client **p = realloc(e->gem_idle, cap * sizeof(*p));
        if (p) {
            e->gem_idle = p;
            e->gem_cap = cap;
        }
    }
    if (e->n_gem_idle < e->gem_cap) {
        e->gem_idle[e->n_gem_idle++] = g;
        g = NULL;
    }
    pthread_mutex_unlock(&e->gem_lock);
    gem_client_free(g);
}

enum search_embed_status search_embed(struct search_engine *e, const struct search_coll *coll,
                                      const char *const *texts, const size_t *lens, size_t n,
                                      float *out, struct search_embed_info *info)
{
    memset(info, 0, sizeof(*info));
    info->retry_after_ms = -1;
    if (!e->gem_key[0]) {
        snprintf(info->detail, sizeof(info->detail), "no Gemini API key is configured");
        return SEARCH_EMBED_UNCONFIGURED;
    }
    if (n == 0 || n > SEARCH_MAX_QUERIES) {
        snprintf(info->detail, sizeof(info->detail), "%zu texts", n);
        return SEARCH_EMBED_REFUSED;
    }
    struct gem_req_opts o = {coll->model, coll->query_task_type, coll->dims};
    struct gem_text gt[SEARCH_MAX_QUERIES];
    char keys[SEARCH_MAX_QUERIES][8];
    for (size_t i = 0; i < n; i++) {
        snprintf(keys[i], sizeof(keys[i]), "q%zu", i);
        gt[i] = (struct gem_text){keys[i], texts[i], lens[i], NULL};
    }
    struct buf body;
    buf_init(&body, (size_t)64 << 20);
    struct gem_client *g = NULL;
    struct gem_result *rs = NULL;
    size_t nr = 0;
    enum search_embed_status st = SEARCH_EMBED_RETRY;
    snprintf(info->detail, sizeof(info->detail), "out of memory");
    if (!gem_build_sync(&body, &o, gt, n) || !(g = take_client(e)))
        goto out;
    struct gem_call res;
    memset(&res, 0, sizeof(res));
    gem_embed_sync(g, coll->model, body.data, body.len, &rs, &nr, &res);
    info->elapsed_ms = res.elapsed_ms;
    info->retry_after_ms = res.retry_after_ms;
    snprintf(info->detail, sizeof(info->detail), "%s", res.detail);
    if (res.outcome != GEM_OK) {
        st = res.outcome == GEM_FATAL ? SEARCH_EMBED_REFUSED : SEARCH_EMBED_RETRY;
        goto out;
    }
    st = SEARCH_EMBED_REFUSED;
    if (nr != n) {
        snprintf(info->detail, sizeof(info->detail), "Google returned %zu embeddings for %zu texts",
                 nr, n);
        goto out;
    }
    bool norm = search_coll_normalises(coll);
    /* the instruction a prompt model gets with each query is paid too */
    struct chunk_budget bud = {0, 0};
    const struct model_facts *m = models_find(coll->model);
    if (m && !chunk_budget_of(m, coll->query_task_type, NULL, 0, &bud))
        bud.prompt_tokens = 0;
    for (size_t i = 0; i < n; i++) {
        if (!rs[i].values || rs[i].dims != coll->dims) {
            snprintf(info->detail, sizeof(info->detail),
                     "Google returned %d values for a %d-dimension query", rs[i].dims, coll->dims);
            goto out;
        }
        float *v = out + i * (size_t)coll->dims;
        memcpy(v, rs[i].values, (size_t)coll->dims * sizeof(float));
        if ((norm || (coll->normalize && search_off_unit(v, coll->dims))) &&
            !search_normalize(v, coll->dims)) {
            snprintf(info->detail, sizeof(info->detail), "Google returned a zero vector");
            goto out;
        }
        if (rs[i].token_count >= 0) {
            info->tokens += rs[i].token_count;
        } else {
            int64_t est = chunker_token_estimate(texts[i], lens[i]) + bud.prompt_tokens;
            info->tokens += est;
            info->estimated += est;
        }
    }
    st = SEARCH_EMBED_OK;
    info->detail[0] = '\0';
out:
    for (size_t i = 0; i < nr; i++)
        gem_result_free(&rs[i]);
    free(rs);
    if (g)
        give_client(e, g);
    buf_cleanup(&body);
    return st;
}
