/* space.c: the embedding space of an OpenAI model string (see space.h). */
#include "openai/space.h"

#include "chunker/chunker.h"
#include "models.h"
#include "store/db.h"
#include "store/jobs.h"

#include <stdio.h>
#include <string.h>

enum found { FOUND_NONE, FOUND_COLL, FOUND_MODEL, FOUND_ERROR };

/* The collection called name (an id or a name) of key_id into sp, with its
 * document task in doc_task. */
static enum found find_collection(PGconn *c, int64_t key_id, const char *name, struct oai_space *sp,
                                  char *doc_task, size_t doc_len, char *err, size_t errlen)
{
    char key[24];
    snprintf(key, sizeof(key), "%lld", (long long)key_id);
    const char *v[2] = {key, name};
    /* an id first, then a name (a name may look like another collection's id) */
    PGresult *r = PQexecParams(
        c,
        "SELECT id, model, output_dimensionality, task_type, query_task_type, normalize"
        " FROM collections WHERE api_key_id = $1 AND"
        " (CASE WHEN $2 ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'"
        "  THEN id = $2::uuid ELSE false END OR name = $2)"
        " ORDER BY (id::text = $2) DESC LIMIT 1",
        2, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        db_error(r, c, "could not look up the collection", err, errlen);
        PQclear(r);
        return FOUND_ERROR;
    }
    enum found f = FOUND_NONE;
    if (PQntuples(r) == 1) {
        f = FOUND_COLL;
        snprintf(sp->coll_id, sizeof(sp->coll_id), "%s", PQgetvalue(r, 0, 0));
        snprintf(sp->model, sizeof(sp->model), "%s", PQgetvalue(r, 0, 1));
        sp->dims = (int)db_int(PQgetvalue(r, 0, 2));
        snprintf(doc_task, doc_len, "%s", PQgetvalue(r, 0, 3));
        snprintf(sp->task_type, sizeof(sp->task_type), "%s", PQgetvalue(r, 0, 4));
        sp->normalize = PQgetvalue(r, 0, 5)[0] == 't';
    }
    PQclear(r);
    return f;
}

static enum found find(PGconn *c, int64_t key_id, const char *name, struct oai_space *sp,
                       char *doc_task, size_t doc_len, char *err, size_t errlen)
{
    enum found f = find_collection(c, key_id, name, sp, doc_task, doc_len, err, errlen);
    if (f != FOUND_NONE)
        return f;
    const struct model_facts *m = models_find(name);
    if (!m)
        return FOUND_NONE;
    snprintf(sp->model, sizeof(sp->model), "%s", m->name);
    sp->dims = 0;
    snprintf(sp->task_type, sizeof(sp->task_type), "RETRIEVAL_QUERY");
    snprintf(doc_task, doc_len, "RETRIEVAL_DOCUMENT");
    sp->normalize = true; /* as OpenAI's embeddings: unit length */
    return FOUND_MODEL;
}

enum oai_space_result oai_space_resolve(PGconn *c, int64_t key_id, const char *model, int dims,
                                        struct oai_space *sp, struct oai_err *e, char *err,
                                        size_t errlen)
{
    memset(sp, 0, sizeof(*sp));
    char doc_task[sizeof(sp->task_type)] = "", base[OAI_MAX_MODEL + 1], alias = 0;
    char task[sizeof(sp->task_type)] = ""; /* task types fit (models.h) */
    enum found f = find(c, key_id, model, sp, doc_task, sizeof(doc_task), err, errlen);
    if (f == FOUND_NONE && oai_model_suffix(model, base, sizeof(base), &alias, task, sizeof(task)))
        f = find(c, key_id, base, sp, doc_task, sizeof(doc_task), err, errlen);
    else
        alias = 0, task[0] = '\0';
    if (f == FOUND_ERROR)
        return OAI_SPACE_DB_ERROR;
    if (f == FOUND_NONE) {
        char names[256];
        models_names(names, sizeof(names));
        oai_fail(e, 404, "model_not_found", "model",
                 "The model `%.120s` does not exist: name a collection of this API key (its id "
                 "or name) or one of %s, optionally with a task suffix (:query, :document or "
                 ":<TASK_TYPE>)",
                 model, names);
        return OAI_SPACE_REFUSED;
    }
    if (alias == 'd')
        snprintf(sp->task_type, sizeof(sp->task_type), "%s", doc_task);
    else if (task[0])
        snprintf(sp->task_type, sizeof(sp->task_type), "%s", task);
    const struct model_facts *m = models_find(sp->model);
    if (!m) {
        oai_fail(e, 404, "model_not_found", "model",
                 "collection `%.120s` uses model %s, which this "
                 "server does not know",
                 model, sp->model);
        return OAI_SPACE_REFUSED;
    }
    sp->max_input_tokens = m->max_input_tokens;
    sp->batch = m->batch;
    if (f == FOUND_COLL) {
        if (dims && dims != sp->dims) {
            oai_fail(e, 400, "invalid_value", "dimensions",
                     "collection `%.120s` has %d dimensions; leave dimensions out or send %d",
                     model, sp->dims, sp->dims);
            return OAI_SPACE_REFUSED;
        }
        return OAI_SPACE_OK;
    }
    sp->dims = dims ? dims : m->default_dims;
    if (sp->dims < m->min_dims || sp->dims > m->max_dims) {
        oai_fail(e, 400, "invalid_value", "dimensions", "%s takes dimensions from %d to %d",
                 m->name, m->min_dims, m->max_dims);
        return OAI_SPACE_REFUSED;
    }
    return OAI_SPACE_OK;
}

bool oai_space_texts_fit(const struct oai_space *sp, const char *const *texts, const size_t *lens,
                         size_t n, bool single, struct oai_err *e)
{
    for (size_t i = 0; i < n; i++) {
        int64_t t = chunker_token_estimate(texts[i], lens[i]);
        if (t > sp->max_input_tokens) {
            char param[32];
            if (single)
                snprintf(param, sizeof(param), "input");
            else
                snprintf(param, sizeof(param), "input[%zu]", i);
            return oai_fail(e, 400, "context_length_exceeded", param,
                            "%s is about %lld tokens; %s takes at most %d tokens per input (less "
                            "than OpenAI's 8192)",
                            param, (long long)t, sp->model, sp->max_input_tokens);
        }
    }
    return true;
}
