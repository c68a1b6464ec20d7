/* render.c: OpenAI's embeddings response body (see render.h). */
#include "openai/render.h"

#include "util/jsonw.h"

#include <string.h>

bool oai_render_begin(struct buf *b)
{
    return buf_puts(b, "{\"object\":\"list\",\"data\":[");
}

bool oai_render_item(struct buf *b, size_t index, const unsigned char *f32le, int dims, bool base64)
{
    return (index == 0 || buf_putc(b, ',')) &&
           buf_printf(b, "{\"object\":\"embedding\",\"index\":%zu,\"embedding\":", index) &&
           (base64 ? jsonw_f32le_base64(b, f32le, dims) : jsonw_f32le_array(b, f32le, dims)) &&
           buf_putc(b, '}');
}

bool oai_render_end(struct buf *b, const char *model, int64_t tokens)
{
    return buf_puts(b, "],\"model\":") && jsonw_cstr(b, model) &&
           buf_printf(b, ",\"usage\":{\"prompt_tokens\":%lld,\"total_tokens\":%lld}}",
                      (long long)tokens, (long long)tokens);
}

void oai_f32le(const float *v, size_t n, unsigned char *out)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        out[4 * i] = (unsigned char)u;
        out[4 * i + 1] = (unsigned char)(u >> 8);
        out[4 * i + 2] = (unsigned char)(u >> 16);
        out[4 * i + 3] = (unsigned char)(u >> 24);
    }
}
