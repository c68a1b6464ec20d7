/*
 * render.h: OpenAI's embeddings response body, written piece by piece so
 * that one writer serves POST /openai/v1/embeddings and every line of a
 * batch's output file (whose body must be exactly what the endpoint would
 * answer):
 *   {"object":"list","data":[{"object":"embedding","index":0,"embedding":[...]}, ...],
 *    "model":"<as requested>","usage":{"prompt_tokens":N,"total_tokens":N}}
 * Vectors are float32 little-endian, as stored: JSON numbers (shortest
 * round trip) or, for encoding_format base64, the base64 of their bytes.
 */
#ifndef SVC_OPENAI_RENDER_H
#define SVC_OPENAI_RENDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"
#include "util/compiler.h"

bool oai_render_begin(struct buf *b) SVC_MUSTCHECK;
bool oai_render_item(struct buf *b, size_t index, const unsigned char *f32le, int dims,
                     bool base64) SVC_MUSTCHECK;
bool oai_render_end(struct buf *b, const char *model, int64_t tokens) SVC_MUSTCHECK;

/* floats as float32 little-endian bytes (out: 4 * n bytes). */
void oai_f32le(const float *v, size_t n, unsigned char *out);

#endif
