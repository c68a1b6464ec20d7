/*
 * budget.h: the token budget of a document's chunks under a model (models.h):
 * the model's input limit, less what the model's prompt puts in front of
 * every chunk (gemini-embedding-2: the task's instruction, and for documents
 * "title: <title> | text: "), which Google counts within the same limit.
 */
#ifndef SVC_CHUNKER_BUDGET_H
#define SVC_CHUNKER_BUDGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "models.h"
#include "util/compiler.h"

struct chunk_budget {
    int64_t max_tokens;    /* chunk_opts.max_tokens for the document's text */
    int64_t prompt_tokens; /* chunker_token_estimate of the instruction sent with each chunk */
};

/* The budget for the chunks of a document with title (NULL: none) embedded
 * by m with task. False on out-of-memory, or when the instruction leaves
 * fewer than 4 tokens for the text. */
bool chunk_budget_of(const struct model_facts *m, const char *task, const char *title,
                     size_t title_len, struct chunk_budget *out) SVC_MUSTCHECK;

#endif
