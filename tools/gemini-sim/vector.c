/*
 * vector.c: the simulator's deterministic embedding function and token count.
 *
 * The vector for (model, taskType, text) is defined so that any test can
 * recompute it independently:
 *
 *   h     = FNV-1a 64 over the bytes  model_id 0x00 task_name 0x00 text
 *           (model_id is the bare id, e.g. "gemini-embedding-001"; task_name
 *           is the TaskType enum name, "TASK_TYPE_UNSPECIFIED" when absent;
 *           text is every parts[].text of the content, concatenated)
 *   state = h
 *   for i in 0 .. native_dims-1:
 *       state += 0x9e3779b97f4a7c15                      (splitmix64)
 *       z = state
 *       z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
 *       z = (z ^ (z >> 27)) * 0x94d049bb133111eb
 *       z =  z ^ (z >> 31)
 *       v[i] = (z >> 11) * 2^-53 * 2 - 1                 (double in [-1, 1))
 *   n     = sqrt(sum of v[i]^2), summed in double in index order
 *   e[i]  = (float)(v[i] / n)
 *
 * e is the model's full native vector (3072 values for gemini-embedding-001
 * and gemini-embedding-2) and has unit length. Different models hash
 * differently and so give unrelated vectors: the same text has another
 * vector under gemini-embedding-2 than under gemini-embedding-001, as
 * Google's two vector spaces are incompatible.
 *
 * outputDimensionality = d < native_dims (Matryoshka truncation):
 *   gemini-embedding-001 returns e[0 .. d-1] as is, not re-normalised, so
 *     shorter vectors are not unit length (Google: "you need to perform
 *     manual normalization for dimensions other than 3072");
 *   gemini-embedding-2 returns (float)(v[i] / n_d) for i < d, with
 *     n_d = sqrt(sum of v[i]^2 for i < d) in double: unit length at every
 *     size (Google: it "automatically normalizes these truncated embeddings").
 *
 * gemini-embedding-2 takes its task inside the text (docs/gemini-embedding-2.md
 * §4) and ignores the taskType field, as Google does: its vectors hash
 * task_name "TASK_TYPE_UNSPECIFIED" whatever taskType says, so only the text
 * (with the instruction a client puts in it) decides the vector.
 *
 * Token count: each maximal run of ASCII letters and digits counts
 * ceil(len / 4) tokens, every other non-space ASCII byte 1, every non-ASCII
 * code point 1, whitespace 0; a non-empty text counts at least 1.
 * Token limits: 2,048 per text for gemini-embedding-001 (longer texts fail),
 * 8,192 for gemini-embedding-2 (longer texts are cut to their longest prefix
 * within the limit and embedded, as Google's guide says it does).
 */
#include "sim.h"

#include <math.h>
#include <string.h>

const char *const sim_task_names[SIM_TASK_COUNT] = {
    "TASK_TYPE_UNSPECIFIED", "RETRIEVAL_QUERY",   "RETRIEVAL_DOCUMENT",
    "SEMANTIC_SIMILARITY",   "CLASSIFICATION",    "CLUSTERING",
    "QUESTION_ANSWERING",    "FACT_VERIFICATION", "CODE_RETRIEVAL_QUERY",
};

static const struct sim_model models[] = {
    {"gemini-embedding-001", 3072, true, 2048, false, false, false, false},
    {"gemini-embedding-2", 3072, true, 8192, true, true, true, true},
    {"text-embedding-004", 768, false, 2048, false, false, false, false},
    {"embedding-001", 768, false, 2048, false, false, false, false},
};

const struct sim_model *sim_model_find(const char *id)
{
    for (size_t i = 0; i < sizeof(models) / sizeof(models[0]); i++)
        if (strcmp(models[i].id, id) == 0)
            return &models[i];
    return NULL;
}

uint64_t sim_fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

uint64_t sim_splitmix(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

double sim_unit(uint64_t h)
{
    return (double)(h >> 11) * 0x1.0p-53;
}

/* The unnormalised values v of the model's vector for (task, text). */
static void raw_vector(const struct sim_model *model, int task, const char *text, size_t text_len,
                       double *v)
{
    static const unsigned char zero = 0;
    if (model->prompt_task)
        task = SIM_TASK_UNSPECIFIED;
    const char *tname = sim_task_names[task >= 0 && task < SIM_TASK_COUNT ? task : 0];
    uint64_t h = SIM_FNV_OFFSET;
    h = sim_fnv1a(h, model->id, strlen(model->id));
    h = sim_fnv1a(h, &zero, 1);
    h = sim_fnv1a(h, tname, strlen(tname));
    h = sim_fnv1a(h, &zero, 1);
    h = sim_fnv1a(h, text, text_len);
    uint64_t state = h;
    for (int i = 0; i < model->native_dims; i++)
        v[i] = sim_unit(sim_splitmix(&state)) * 2.0 - 1.0;
}

void sim_vector(const struct sim_model *model, int task, const char *text, size_t text_len,
                float *out)
{
    sim_vector_dims(model, task, text, text_len, 0, out);
}

void sim_vector_dims(const struct sim_model *model, int task, const char *text, size_t text_len,
                     int dims, float *out)
{
    double v[SIM_NATIVE_DIMS_MAX];
    int n = model->native_dims;
    if (dims <= 0 || dims > n)
        dims = n;
    raw_vector(model, task, text, text_len, v);
    /* the norm over every value, or over the first dims for a model that
     * re-normalises truncated vectors (summed in index order) */
    int over = model->unit_all_dims ? dims : n;
    double sum = 0.0;
    for (int i = 0; i < over; i++)
        sum += v[i] * v[i];
    double norm = sqrt(sum);
    for (int i = 0; i < dims; i++)
        out[i] = (float)(v[i] / norm);
}

int64_t sim_token_limit(const struct sim_settings *s, const struct sim_model *m)
{
    return s->max_input_tokens > 0 ? s->max_input_tokens : m->max_tokens;
}

static bool is_alnum_ascii(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

int64_t sim_token_count(const char *text, size_t len)
{
    const unsigned char *s = (const unsigned char *)text;
    int64_t tokens = 0;
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        if (is_alnum_ascii(c)) {
            size_t run = 0;
            while (i < len && is_alnum_ascii(s[i])) {
                run++;
                i++;
            }
            tokens += (int64_t)((run + 3) / 4);
        } else if (c < 0x80) {
            if (c != ' ' && c != '\t' && c != '\n' && c != '\r' && c != '\f' && c != '\v')
                tokens++;
            i++;
        } else {
            /* count lead bytes only: one token per code point */
            if ((c & 0xC0) != 0x80)
                tokens++;
            i++;
        }
    }
    if (tokens == 0 && len > 0)
        tokens = 1;
    return tokens;
}

size_t sim_token_prefix(const char *text, size_t len, int64_t max)
{
    const unsigned char *s = (const unsigned char *)text;
    int64_t done = 0; /* tokens before the current run of letters and digits */
    size_t run = 0, i = 0, ok = 0;
    while (i < len) {
        unsigned char c = s[i];
        size_t next = i + 1;
        int64_t add = 0;
        if (is_alnum_ascii(c)) {
            run++;
            add = (int64_t)((run + 3) / 4);
        } else {
            done += (int64_t)((run + 3) / 4);
            run = 0;
            if (c >= 0x80)
                while (next < len && (s[next] & 0xC0) == 0x80)
                    next++;
            if (c >= 0x80 ||
                (c != ' ' && c != '\t' && c != '\n' && c != '\r' && c != '\f' && c != '\v'))
                done++;
        }
        if (done + add > max)
            break;
        i = next;
        ok = i;
    }
    return ok;
}
