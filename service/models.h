/*
 * models.h: the facts embedd needs about each embedding model, in one table
 * (models.c, each entry with its source and date): batch support, input
 * token limit, dimension range and defaults, which dimensions come back unit
 * length, how the task type and the title reach the model (request fields,
 * or an instruction inside the text), and prices per million input tokens
 * for the cost accounting. Everything else asks here instead of hard-coding
 * a model's numbers; the wire details behind the table are in
 * docs/gemini-embedding-2.md and shared/gemini-batch-api.md.
 */
#ifndef SVC_MODELS_H
#define SVC_MODELS_H

#include <stdbool.h>
#include <stddef.h>

#include "util/compiler.h"

/* How a model learns the task type and a document's title. */
enum model_task_via {
    MODEL_TASK_FIELDS, /* EmbedContentRequest.taskType, and .title with RETRIEVAL_DOCUMENT */
    MODEL_TASK_PROMPT, /* an instruction in front of the text; the fields are never sent */
};

struct model_facts {
    const char *name;            /* the id in URLs: "gemini-embedding-001" */
    bool batch;                  /* asyncBatchEmbedContent accepts it */
    int max_input_tokens;        /* per text, the instruction of a prompt model included */
    int min_dims, max_dims;      /* outputDimensionality range */
    int default_dims;            /* what embedd uses when a request names none */
    int unit_dims;               /* a dimension whose vectors come back unit length */
    double interactive_per_mtok; /* USD per 1M input tokens, interactive API */
    double batch_per_mtok;       /* USD per 1M input tokens, batch API */
    bool confirmed;              /* every fact above from Google's own documentation */
    /* added with gemini-embedding-2 */
    int native_dims;           /* what Google returns when no outputDimensionality is sent */
    bool unit_all_dims;        /* every outputDimensionality comes back unit length */
    enum model_task_via task;  /* how task type and title are sent */
    const char *prompt_scheme; /* MODEL_TASK_PROMPT: names the templates (vector identity) */
    const char *unconfirmed;   /* which facts are not from Google's own documentation, or NULL */
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
/* The largest max_dims of the table (bounds for any collection's vectors). */
int models_max_dims(void);

/*
 * The model of jobs and collections that name none (the --default-model
 * setting). Set once at start-up, before any thread runs: false with err set
 * when name is not a usable model. Until then, gemini-embedding-001.
 */
bool models_set_default(const char *name, char *err, size_t errlen) SVC_MUSTCHECK;
const struct model_facts *models_default(void);

/* Whether vectors of model m at dims dimensions come back unit length. */
bool models_unit_length(const struct model_facts *m, int dims);
/* Whether embedd L2-normalises vectors of model (by name) at dims when the
 * job or collection asks for normalised vectors: only where the table does
 * not promise unit length (an unknown model: always). */
bool models_normalises(const char *model, int dims, bool normalize);
/* The largest chunking.max_chars for model m: about 3.9 characters per
 * token of its input limit (8,000 for a 2,048-token model). */
int models_max_chunk_chars(const struct model_facts *m);

/* Task types of Gemini's embedding API (TaskType, without UNSPECIFIED). */
extern const char *const model_task_types[];
bool models_task_valid(const char *task);

/*
 * The instruction a MODEL_TASK_PROMPT model gets in front of a text
 * (docs/gemini-embedding-2.md §4): the text sent is
 *   lead + content                                   (titled false)
 *   lead + (title, or "none" when NULL or empty) + MODEL_PROMPT_TITLE_END + content
 * For RETRIEVAL_DOCUMENT lead is "title: " and titled is true; for the query
 * and symmetric tasks lead is "task: <use case> | query: "; for no task (NULL
 * or "") nothing is added. False when m sends tasks as fields (or m is
 * NULL): the text goes as it is.
 */
#define MODEL_PROMPT_TITLE_END " | text: "
#define MODEL_PROMPT_NO_TITLE  "none"
struct model_prompt {
    const char *lead;
    bool titled;
};
bool models_prompt(const struct model_facts *m, const char *task, struct model_prompt *out);
/* The instruction for (m, task, title) written into out (NUL-terminated);
 * its length, 0 when there is none, or SIZE_MAX when it needs more than n
 * bytes. */
size_t models_prompt_head(const struct model_facts *m, const char *task, const char *title,
                          size_t title_len, char *out, size_t n);
/* Whether a title reaches model m with task: a field of a MODEL_TASK_FIELDS
 * model or the slot of a prompt's document template, both only with
 * RETRIEVAL_DOCUMENT (a title given with another task is dropped). */
bool models_title_sent(const struct model_facts *m, const char *task);

/*
 * Prices can be set per model (the --prices setting, "model=interactive/batch,..."
 * in USD per 1M input tokens); the table's figures apply otherwise. Parse
 * the setting once at start-up: false with err set when it is malformed.
 */
bool models_set_prices(const char *spec, char *err, size_t errlen) SVC_MUSTCHECK;
/* The prices of model (USD per 1M input tokens); false when unknown. */
bool models_prices(const char *model, double *interactive, double *batch);

#endif
