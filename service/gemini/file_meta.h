/*
 * file_meta.h: File resources of Gemini's Files API parsed (files.get, the
 * files.list page, the {"file":{...}} answer that ends an upload), as pure
 * functions over shared/gemini-batch-api.md §5. No I/O.
 *
 * Lenient where Google varies (sizeBytes as a string or a number, absent
 * meaning 0 as proto3 leaves zeros out; unknown fields and states ignored),
 * strict where a mistake would point at the wrong file (a name that is not
 * "files/<id>").
 */
#ifndef SVC_GEMINI_FILE_META_H
#define SVC_GEMINI_FILE_META_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/compiler.h"

enum gem_file_state {
    GEM_FILE_STATE_UNSPECIFIED = 0, /* absent or unknown */
    GEM_FILE_PROCESSING,
    GEM_FILE_ACTIVE,
    GEM_FILE_FAILED
};

/* "ACTIVE", "PROCESSING", "FAILED"; UNSPECIFIED for anything else. */
enum gem_file_state gem_file_state_parse(const char *s);
const char *gem_file_state_name(enum gem_file_state s); /* "ACTIVE", ... */

/* One File. Texts too long for their field are cut at a UTF-8 boundary. */
struct gem_file {
    char name[128];         /* "files/<id>" */
    char display_name[256]; /* "" if absent */
    char mime_type[128];    /* "" if absent */
    int64_t size_bytes;     /* 0 if absent (proto3 leaves a zero out) */
    enum gem_file_state state;
    char sha256_hash[96];     /* base64 of the content's SHA-256; "" if absent */
    char create_time[48];     /* RFC 3339; "" if absent */
    char expiration_time[48]; /* RFC 3339 (create + 48 h); "" if absent */
    char source[24];          /* "UPLOADED", "GENERATED"; "" if absent */
};

/* Parse a bare File object (files.get), or one wrapped as {"file":{...}} (the
 * answer to a finalized upload). err gets a reason on failure. */
bool gem_parse_file(const char *body, size_t len, struct gem_file *f, char *err,
                    size_t errlen) SVC_MUSTCHECK;

/* Parse a files.list page: {"files":[File...],"nextPageToken":"..."}, or {}
 * when there are none. *files is malloc'd (free() it; NULL when n is 0);
 * next_token is "" on the last page. A File without a usable name fails the
 * whole page. */
bool gem_parse_file_list(const char *body, size_t len, struct gem_file **files, size_t *n,
                         char *next_token, size_t token_len, char *err,
                         size_t errlen) SVC_MUSTCHECK;

#endif
