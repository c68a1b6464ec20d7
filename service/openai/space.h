/*
 * space.h: the embedding space an OpenAI model string names (request.h):
 * a collection of the API key, by id or name, or a model of embedd's table,
 * each with an optional task suffix.
 */
#ifndef SVC_OPENAI_SPACE_H
#define SVC_OPENAI_SPACE_H

#include <libpq-fe.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "openai/request.h"
#include "util/compiler.h"

struct oai_space {
    char model[64]; /* Gemini's model id */
    int dims;
    char task_type[32];
    bool normalize;
    char coll_id[37];     /* the collection named, "" for a model of the table */
    int max_input_tokens; /* per text (models.h) */
    bool batch;           /* the model has batch support */
};

enum oai_space_result {
    OAI_SPACE_OK,
    OAI_SPACE_REFUSED, /* e says why: 404 model_not_found, 400 dimensions */
    OAI_SPACE_DB_ERROR /* err says why */
};

/* Resolve model (with dims, 0 when the request named none) for API key
 * key_id on c. */
enum oai_space_result oai_space_resolve(PGconn *c, int64_t key_id, const char *model, int dims,
                                        struct oai_space *sp, struct oai_err *e, char *err,
                                        size_t errlen) SVC_MUSTCHECK;

/* Texts within the space's token limit: false with e (400, param
 * "input[i]") for the first that is not, with OpenAI's and Google's limits
 * named. param_prefix: "input". */
bool oai_space_texts_fit(const struct oai_space *sp, const char *const *texts, const size_t *lens,
                         size_t n, bool single, struct oai_err *e);

#endif
