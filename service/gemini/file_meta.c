/* file_meta.c: File resources of the Gemini Files API parsed: files.get, files.list pages and the
 * {"file":{...}} answer of a finalized upload. */
#include "gemini/file_meta.h"

#include "gemini/json.h"

#include <json-c/json.h>

#include <stdlib.h>
#include <string.h>

#define NAME_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."

static const char *const state_names[] = {"STATE_UNSPECIFIED", "PROCESSING", "ACTIVE", "FAILED"};

enum gem_file_state gem_file_state_parse(const char *s)
{
    if (!s)
        return GEM_FILE_STATE_UNSPECIFIED;
    for (size_t i = 1; i < SVC_ARRAY_LEN(state_names); i++)
        if (strcmp(s, state_names[i]) == 0)
            return (enum gem_file_state)i;
    return GEM_FILE_STATE_UNSPECIFIED;
}

const char *gem_file_state_name(enum gem_file_state s)
{
    return (size_t)s < SVC_ARRAY_LEN(state_names) ? state_names[s] : state_names[0];
}

/* "files/<id>", the id made only of characters that go into a URL as they are. */
static bool usable_name(const char *s)
{
    if (!s || strncmp(s, "files/", 6) != 0)
        return false;
    size_t n = strspn(s + 6, NAME_CHARS);
    return n > 0 && s[6 + n] == '\0' && strcmp(s + 6, ".") != 0 && strcmp(s + 6, "..") != 0;
}

static bool parse_one(json_object *o, struct gem_file *f, char *err, size_t errlen)
{
    memset(f, 0, sizeof(*f));
    if (!gem_json_is_obj(o)) {
        gem_json_fail(err, errlen, "file is not an object");
        return false;
    }
    json_object *name = gem_json_dig(o, "name", NULL);
    if (!usable_name(gem_json_str_of(name)) || !gem_json_copy_str(f->name, sizeof(f->name), name)) {
        gem_json_fail(err, errlen, "file without a usable \"files/<id>\" name");
        return false;
    }
    json_object *size = gem_json_dig(o, "sizeBytes", NULL);
    f->size_bytes = gem_json_i64_or(size, -1);
    if (size && f->size_bytes < 0) {
        gem_json_fail(err, errlen, "sizeBytes is not a non-negative int64");
        return false;
    }
    if (!size)
        f->size_bytes = 0;
    /* texts that do not fit are cut: they name nothing we act on */
    (void)gem_json_copy_str(f->display_name, sizeof(f->display_name),
                            gem_json_dig(o, "displayName", NULL));
    (void)gem_json_copy_str(f->mime_type, sizeof(f->mime_type), gem_json_dig(o, "mimeType", NULL));
    (void)gem_json_copy_str(f->sha256_hash, sizeof(f->sha256_hash),
                            gem_json_dig(o, "sha256Hash", NULL));
    (void)gem_json_copy_str(f->create_time, sizeof(f->create_time),
                            gem_json_dig(o, "createTime", NULL));
    (void)gem_json_copy_str(f->expiration_time, sizeof(f->expiration_time),
                            gem_json_dig(o, "expirationTime", NULL));
    (void)gem_json_copy_str(f->source, sizeof(f->source), gem_json_dig(o, "source", NULL));
    f->state = gem_file_state_parse(gem_json_str_of(gem_json_dig(o, "state", NULL)));
    return true;
}

bool gem_parse_file(const char *body, size_t len, struct gem_file *f, char *err, size_t errlen)
{
    memset(f, 0, sizeof(*f));
    json_object *o = gem_json_parse_body(body, len, err, errlen);
    if (!o)
        return false;
    json_object *wrapped = gem_json_dig(o, "file", NULL);
    bool ok = parse_one(wrapped ? wrapped : o, f, err, errlen);
    if (!ok)
        memset(f, 0, sizeof(*f));
    json_object_put(o);
    return ok;
}

bool gem_parse_file_list(const char *body, size_t len, struct gem_file **files, size_t *n,
                         char *next_token, size_t token_len, char *err, size_t errlen)
{
    *files = NULL;
    *n = 0;
    if (token_len)
        next_token[0] = '\0';
    json_object *o = gem_json_parse_body(body, len, err, errlen);
    if (!o)
        return false;
    json_object *arr = gem_json_dig(o, "files", NULL);
    json_object *tok = gem_json_dig(o, "nextPageToken", NULL);
    bool ok = false;
    size_t count =
        arr && json_object_is_type(arr, json_type_array) ? json_object_array_length(arr) : 0;
    struct gem_file *out = NULL;
    if (!gem_json_is_obj(o) || (arr && !json_object_is_type(arr, json_type_array)))
        gem_json_fail(err, errlen, "not a list of files");
    else if (tok && (!gem_json_str_of(tok) || !token_len ||
                     !gem_json_copy_str(next_token, token_len, tok)))
        gem_json_fail(err, errlen, "nextPageToken is not a string of under %zu bytes", token_len);
    else if (count && !(out = calloc(count, sizeof(*out))))
        gem_json_fail(err, errlen, "out of memory");
    else
        ok = true;
    for (size_t i = 0; ok && i < count; i++) {
        char why[160] = "";
        ok = parse_one(json_object_array_get_idx(arr, i), &out[i], why, sizeof(why));
        if (!ok)
            gem_json_fail(err, errlen, "files[%zu]: %s", i, why);
    }
    if (ok) {
        *files = out;
        *n = count;
    } else {
        free(out);
        if (token_len)
            next_token[0] = '\0';
    }
    json_object_put(o);
    return ok;
}
