/*
 * json.h: reading json-c values the way the Gemini parsers (gemini/status.c,
 * gemini/response.c) need it. Internal to service/gemini/.
 */
#ifndef SVC_GEMINI_JSON_H
#define SVC_GEMINI_JSON_H

#include <json-c/json.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/compiler.h"

/* Format a reason into err[errlen]; nothing when err is NULL or errlen 0. */
void gem_json_fail(char *err, size_t errlen, const char *fmt, ...) SVC_PRINTF(3, 4);

/* One JSON value filling body[0..len) exactly (trailing whitespace allowed).
 * Caller owns the result (json_object_put); NULL, err set, if it is not JSON. */
json_object *gem_json_parse_body(const char *body, size_t len, char *err, size_t errlen);

/* Walk the member names given (NULL-terminated); NULL if any step is not an
 * object or absent. Borrowed from o. */
json_object *gem_json_dig(json_object *o, ...);

bool gem_json_is_obj(json_object *v);

/* v's text if it is a string, else NULL. Borrowed; valid while v lives. */
const char *gem_json_str_of(json_object *v);

/* A proto3 int64 (a JSON integer or a string of digits); dflt if v is none. */
int64_t gem_json_i64_or(json_object *v, int64_t dflt);

/* Copy a JSON string into dst[n]. Cut at a UTF-8 boundary when too long;
 * returns whether it fit. A missing or non-string value gives "". */
bool gem_json_copy_str(char *dst, size_t n, json_object *v);

#endif
