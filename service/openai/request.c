/* request.c: OpenAI's embeddings request, validated (see request.h). */
#include "openai/request.h"

#include "models.h"
#include "util/jsonw.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *type_of_status(int status)
{
    if (status == 401)
        return "invalid_request_error";
    if (status == 403)
        return "permission_error";
    if (status == 429)
        return "rate_limit_error";
    if (status >= 500)
        return "server_error";
    return "invalid_request_error";
}

bool oai_fail(struct oai_err *e, int status, const char *code, const char *param, const char *fmt,
              ...)
{
    e->status = status;
    snprintf(e->type, sizeof(e->type), "%s", type_of_status(status));
    snprintf(e->code, sizeof(e->code), "%s", code ? code : "");
    snprintf(e->param, sizeof(e->param), "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
    return false;
}

/* A string member, or null when s is "". */
static bool put_str_or_null(struct buf *b, const char *s)
{
    return *s ? jsonw_cstr(b, s) : buf_puts(b, "null");
}

bool oai_put_error(struct buf *b, const struct oai_err *e)
{
    return buf_puts(b, "{\"error\":{\"message\":") && jsonw_cstr(b, e->message) &&
           buf_puts(b, ",\"type\":") && jsonw_cstr(b, e->type) && buf_puts(b, ",\"param\":") &&
           put_str_or_null(b, e->param) && buf_puts(b, ",\"code\":") &&
           put_str_or_null(b, e->code) && buf_puts(b, "}}");
}

void oai_emb_req_free(struct oai_emb_req *r)
{
    free(r->texts);
    free(r->lens);
    memset(r, 0, sizeof(*r));
}

static bool is_int(json_object *v)
{
    return json_object_is_type(v, json_type_int);
}

/* Whether v is a token array (integers) or an array of them. */
static bool token_array(json_object *v)
{
    if (!json_object_is_type(v, json_type_array) || json_object_array_length(v) == 0)
        return false;
    json_object *x = json_object_array_get_idx(v, 0);
    return is_int(x) ||
           (json_object_is_type(x, json_type_array) && json_object_array_length(x) > 0 &&
            is_int(json_object_array_get_idx(x, 0)));
}

/* One input text at index i (i < 0: the single string). */
static bool one_text(json_object *v, long i, struct oai_emb_req *r, struct oai_err *e)
{
    char param[32];
    if (i < 0)
        snprintf(param, sizeof(param), "input");
    else
        snprintf(param, sizeof(param), "input[%ld]", i);
    if (is_int(v) || json_object_is_type(v, json_type_array))
        return oai_fail(e, 400, "unsupported_input", param,
                        "embedd needs text: %s is a token array, and Gemini embeds only strings; "
                        "send the input as a string or an array of strings",
                        param);
    if (!json_object_is_type(v, json_type_string))
        return oai_fail(e, 400, "invalid_type", param, "%s must be a string or an array of strings",
                        param);
    const char *s = json_object_get_string(v);
    size_t n = (size_t)json_object_get_string_len(v);
    if (n == 0)
        return oai_fail(e, 400, "invalid_value", param, "%s must not be an empty string", param);
    if (memchr(s, '\0', n))
        return oai_fail(e, 400, "invalid_value", param, "%s contains a NUL character", param);
    r->texts[r->n] = s;
    r->lens[r->n] = n;
    r->n++;
    return true;
}

static bool parse_input(json_object *v, struct oai_emb_req *r, struct oai_err *e)
{
    if (token_array(v))
        return oai_fail(e, 400, "unsupported_input", "input",
                        "embedd needs text: input is a token array, and Gemini embeds only "
                        "strings; send the input as a string or an array of strings");
    size_t n = json_object_is_type(v, json_type_array) ? json_object_array_length(v) : 1;
    if (json_object_is_type(v, json_type_array) && n == 0)
        return oai_fail(e, 400, "invalid_value", "input", "input must not be an empty array");
    if (n > OAI_MAX_INPUTS)
        return oai_fail(e, 400, "too_many_inputs", "input",
                        "input has %zu items; at most %d per request", n, OAI_MAX_INPUTS);
    r->texts = calloc(n, sizeof(*r->texts));
    r->lens = calloc(n, sizeof(*r->lens));
    if (!r->texts || !r->lens)
        return oai_fail(e, 503, "out_of_memory", NULL, "the server is out of memory");
    r->single = !json_object_is_type(v, json_type_array);
    if (r->single)
        return one_text(v, -1, r, e);
    for (size_t i = 0; i < n; i++)
        if (!one_text(json_object_array_get_idx(v, i), (long)i, r, e))
            return false;
    return true;
}

bool oai_parse_embeddings(json_object *body, struct oai_emb_req *r, struct oai_err *e)
{
    static const char *const known[] = {"input",      "model", "encoding_format",
                                        "dimensions", "user",  NULL};
    memset(r, 0, sizeof(*r));
    if (!json_object_is_type(body, json_type_object))
        return oai_fail(e, 400, "invalid_request", NULL, "the request body must be a JSON object");
    json_object_object_foreach(body, key, val)
    {
        (void)val;
        bool ok = false;
        for (size_t i = 0; known[i] && !ok; i++)
            ok = strcmp(known[i], key) == 0;
        if (!ok)
            return oai_fail(e, 400, "unknown_parameter", key,
                            "Unrecognized request argument supplied: %.60s", key);
    }
    json_object *v;
    if (!json_object_object_get_ex(body, "model", &v) || json_object_is_type(v, json_type_null))
        return oai_fail(e, 400, "missing_required_parameter", "model",
                        "you must provide a model parameter");
    if (!json_object_is_type(v, json_type_string) || json_object_get_string_len(v) == 0 ||
        json_object_get_string_len(v) > OAI_MAX_MODEL ||
        memchr(json_object_get_string(v), '\0', (size_t)json_object_get_string_len(v)))
        return oai_fail(e, 400, "invalid_value", "model",
                        "model must be a collection id or name, or a model name (1 to %d bytes)",
                        OAI_MAX_MODEL);
    r->model = json_object_get_string(v);
    if (!json_object_object_get_ex(body, "input", &v) || json_object_is_type(v, json_type_null))
        return oai_fail(e, 400, "missing_required_parameter", "input",
                        "you must provide an input parameter");
    if (!parse_input(v, r, e))
        return false;
    if (json_object_object_get_ex(body, "encoding_format", &v) &&
        !json_object_is_type(v, json_type_null)) {
        const char *f = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
        if (strcmp(f, "base64") == 0)
            r->base64 = true;
        else if (strcmp(f, "float") != 0)
            return oai_fail(e, 400, "invalid_value", "encoding_format",
                            "encoding_format must be \"float\" or \"base64\"");
    }
    if (json_object_object_get_ex(body, "dimensions", &v) &&
        !json_object_is_type(v, json_type_null)) {
        int64_t d = is_int(v) ? json_object_get_int64(v) : 0;
        if (d < 1 || d > 65536)
            return oai_fail(e, 400, "invalid_value", "dimensions",
                            "dimensions must be a positive integer");
        r->dims = (int)d;
    }
    if (json_object_object_get_ex(body, "user", &v) && !json_object_is_type(v, json_type_null) &&
        !json_object_is_type(v, json_type_string))
        return oai_fail(e, 400, "invalid_type", "user", "user must be a string");
    return true;
}

bool oai_model_suffix(const char *model, char *base, size_t base_len, char *alias, char *task,
                      size_t task_len)
{
    const char *colon = strrchr(model, ':');
    if (!colon || colon == model || (size_t)(colon - model) >= base_len)
        return false;
    const char *s = colon + 1;
    char up[40];
    size_t n = strlen(s);
    if (n == 0 || n >= sizeof(up))
        return false;
    for (size_t i = 0; i <= n; i++)
        up[i] = (char)toupper((unsigned char)s[i]);
    char a = 0;
    if (strcmp(up, "QUERY") == 0)
        a = 'q';
    else if (strcmp(up, "DOCUMENT") == 0)
        a = 'd';
    else if (!models_task_valid(up))
        return false;
    memcpy(base, model, (size_t)(colon - model));
    base[colon - model] = '\0';
    *alias = a;
    snprintf(task, task_len, "%s", a ? "" : up);
    return true;
}
