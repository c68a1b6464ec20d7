/*
 * models.h: the facts embedd needs about each embedding model, in one table
 * (models.c, each entry with its source and date): batch support, input
 * token limit, dimension range and default, which dimension comes back unit
 * length, and prices per million input tokens for the cost accounting.
 * Everything else asks here instead of hard-coding a model's numbers.
 */
#ifndef SVC_MODELS_H
#define SVC_MODELS_H

#include <stdbool.h>
#include <stddef.h>

#include "util/compiler.h"

struct model_facts {
    const char *name;            /* the id in URLs: "gemini-embedding-001" */
    bool batch;                  /* asyncBatchEmbedContent accepts it */
    int max_input_tokens;        /* per text */
    int min_dims, max_dims;      /* outputDimensionality range */
    int default_dims;            /* what embedd uses when a request names none */
    int unit_dims;               /* the one dimension whose vectors come back unit length */
    double interactive_per_mtok; /* USD per 1M input tokens, interactive API */
    double batch_per_mtok;       /* USD per 1M input tokens, batch API */
    bool confirmed;              /* every fact above from Google's own documentation */
};

/* The model called name, or NULL when embedd does not know it. */
const struct model_facts *models_find(const char *name);
/* Models embedd knows, in table order; *n gets the count. */
const struct model_facts *models_all(size_t *n);
/* A model that exists at Google but cannot be used here (no batch support),
 * with the reason for an error message; NULL when name is not one of them. */
const char *models_refused(const char *name);
/* "a, b" of the usable model names into out. */
void models_names(char *out, size_t n);

/* Task types of Gemini's embedding API (TaskType, without UNSPECIFIED). */
extern const char *const model_task_types[];
bool models_task_valid(const char *task);

/*
 * Prices can be set per model (the --prices setting, "model=interactive/batch,..."
 * in USD per 1M input tokens); the table's figures apply otherwise. Parse
 * the setting once at start-up: false with err set when it is malformed.
 */
bool models_set_prices(const char *spec, char *err, size_t errlen) SVC_MUSTCHECK;
/* The prices of model (USD per 1M input tokens); false when unknown. */
bool models_prices(const char *model, double *interactive, double *batch);

#endif
