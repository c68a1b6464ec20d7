/*
 * filter.h: metadata filters of a query: equality on top-level members of a
 * document's metadata object ({"lang": "en", "year": 2024}). Values compare
 * by JSON type and value: strings byte for byte, numbers as IEEE doubles
 * (1 and 1.0 are equal), true, false, null. Every pair must match; a
 * document without metadata matches only the empty filter.
 *
 * Both sides are reduced to the same packed form, a run of (key, value)
 * pairs with the value in a canonical encoding, so that matching is a few
 * memcmp calls per document.
 */
#ifndef SVC_SEARCH_FILTER_H
#define SVC_SEARCH_FILTER_H

#include <json-c/json.h>

#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"
#include "util/compiler.h"

struct search_filter {
    struct buf packed; /* the pairs, packed as filter_pack writes them */
    size_t n;          /* pairs */
};

/* An empty filter (matches every document with or without metadata until a
 * pair is added). */
void search_filter_init(struct search_filter *f);
void search_filter_cleanup(struct search_filter *f);
/* Whether v can be compared (a string, number, boolean or null). */
bool search_filter_scalar(json_object *v);
/* Add key == v (v a scalar); false when v is not one, or out of memory. */
bool search_filter_add(struct search_filter *f, const char *key, size_t key_len,
                       json_object *v) SVC_MUSTCHECK;

/* Append the top-level scalar members of the metadata JSON object text
 * json[0..len) to out, packed. A text that is not an object packs to
 * nothing. false only when out of memory (or past out's cap). */
bool filter_pack(const char *json, size_t len, struct buf *out) SVC_MUSTCHECK;

/* Whether a document whose metadata packed to doc[0..len) matches f (has_meta:
 * the document has metadata at all). */
bool filter_match(const struct search_filter *f, bool has_meta, const char *doc, size_t len);

#endif
