/* doc_spool.c: documents in an unlinked temporary file (see doc_spool.h). */
#include "doc_spool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SPOOL_IO (256u << 10) /* bytes per write() and read() */

/* A record: four little-endian 64-bit lengths (id, title + 1, metadata + 1,
 * text; 0 for an absent title or metadata), then the bytes of each. */
#define HEADER 32

static bool fail_io(struct doc_spool *s)
{
    s->err_no = errno ? errno : EIO;
    return false;
}

bool doc_spool_open(struct doc_spool *s, const char *dir, size_t max_doc, char *err, size_t errlen)
{
    memset(s, 0, sizeof(*s));
    s->fd = -1;
    buf_init(&s->wbuf, SPOOL_IO + HEADER);
    buf_init(&s->rbuf, SPOOL_IO);
    buf_init(&s->doc, max_doc + 4); /* + the NULs after each field */
    char path[4096];
    int n = snprintf(path, sizeof(path), "%s/embedd-spool-XXXXXX", dir);
    if (n < 0 || (size_t)n >= sizeof(path)) {
        s->err_no = ENAMETOOLONG;
    } else if ((s->fd = mkstemp(path)) < 0) {
        s->err_no = errno;
    } else { /* the name goes at once: the file lives as long as the descriptor */
        unlink(path);
        (void)fcntl(s->fd, F_SETFD, FD_CLOEXEC);
    }
    if (s->fd < 0) {
        char msg[128];
        if (strerror_r(s->err_no, msg, sizeof(msg)) != 0)
            snprintf(msg, sizeof(msg), "errno %d", s->err_no);
        snprintf(err, errlen, "could not create a spool file in %s: %s", dir, msg);
        doc_spool_close(s);
        return false;
    }
    return true;
}

static bool flush(struct doc_spool *s)
{
    size_t off = 0;
    while (off < s->wbuf.len) {
        ssize_t w = write(s->fd, s->wbuf.data + off, s->wbuf.len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return fail_io(s);
        off += (size_t)w;
    }
    buf_reset(&s->wbuf);
    return true;
}

/* Append n bytes through the write buffer (large pieces go straight out). */
static bool put(struct doc_spool *s, const void *p, size_t n)
{
    if (s->wbuf.len + n > SPOOL_IO && !flush(s))
        return false;
    if (n >= SPOOL_IO) {
        const char *c = p;
        while (n) {
            ssize_t w = write(s->fd, c, n);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                return fail_io(s);
            c += w;
            n -= (size_t)w;
        }
        return true;
    }
    if (!buf_append(&s->wbuf, p, n)) {
        s->err_no = ENOMEM;
        return false;
    }
    return true;
}

static void le64(unsigned char *out, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        out[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le64(const unsigned char *in)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | in[i];
    return v;
}

bool doc_spool_add(struct doc_spool *s, const struct ingest_doc *d)
{
    size_t meta_len = d->metadata_json ? strlen(d->metadata_json) : 0;
    unsigned char h[HEADER];
    le64(h, d->id_len);
    le64(h + 8, d->title ? d->title_len + 1 : 0);
    le64(h + 16, d->metadata_json ? meta_len + 1 : 0);
    le64(h + 24, d->text_len);
    bool ok = put(s, h, sizeof(h)) && put(s, d->id, d->id_len) &&
              (!d->title || put(s, d->title, d->title_len)) &&
              (!d->metadata_json || put(s, d->metadata_json, meta_len)) &&
              put(s, d->text, d->text_len);
    if (ok)
        s->n++;
    return ok;
}

bool doc_spool_clear(struct doc_spool *s)
{
    buf_reset(&s->wbuf);
    s->n = 0;
    if (ftruncate(s->fd, 0) != 0 || lseek(s->fd, 0, SEEK_SET) != 0)
        return fail_io(s);
    return true;
}

bool doc_spool_rewind(struct doc_spool *s)
{
    if (!flush(s) || lseek(s->fd, 0, SEEK_SET) != 0)
        return fail_io(s);
    buf_reset(&s->rbuf);
    s->roff = 0;
    s->got = 0;
    return true;
}

/* Copy n bytes of the file into out (through the read buffer). */
static bool get(struct doc_spool *s, char *out, size_t n)
{
    while (n) {
        if (s->roff == s->rbuf.len) {
            buf_reset(&s->rbuf);
            s->roff = 0;
            if (!buf_reserve(&s->rbuf, SPOOL_IO)) {
                s->err_no = ENOMEM;
                return false;
            }
            ssize_t r;
            do
                r = read(s->fd, s->rbuf.data, SPOOL_IO);
            while (r < 0 && errno == EINTR);
            if (r <= 0) {
                errno = r == 0 ? EIO : errno; /* the file is shorter than its records */
                return fail_io(s);
            }
            s->rbuf.len = (size_t)r;
            s->roff = 0;
        }
        size_t k = s->rbuf.len - s->roff < n ? s->rbuf.len - s->roff : n;
        memcpy(out, s->rbuf.data + s->roff, k);
        s->roff += k;
        out += k;
        n -= k;
    }
    return true;
}

int doc_spool_next(struct doc_spool *s, struct ingest_doc *d)
{
    if (s->got == s->n)
        return 0;
    unsigned char h[HEADER];
    if (!get(s, (char *)h, sizeof(h)))
        return -1;
    uint64_t len[4] = {get_le64(h), get_le64(h + 8), get_le64(h + 16), get_le64(h + 24)};
    uint64_t total = 4;
    for (int i = 0; i < 4; i++)
        total += len[i];
    buf_reset(&s->doc);
    if (total > s->doc.max || !buf_reserve(&s->doc, (size_t)total)) {
        s->err_no = ENOMEM;
        return -1;
    }
    char *p = s->doc.data;
    const char *field[4];
    for (int i = 0; i < 4; i++) {
        bool optional = i == 1 || i == 2; /* title, metadata: length + 1, or 0 when absent */
        size_t n = (size_t)len[i] - (optional && len[i] ? 1 : 0);
        field[i] = optional && !len[i] ? NULL : p;
        if (!get(s, p, n))
            return -1;
        p[n] = '\0';
        p += n + 1;
    }
    *d = (struct ingest_doc){
        field[0], (size_t)len[0], field[1],      len[1] ? (size_t)len[1] - 1 : 0,
        field[2], field[3],       (size_t)len[3]};
    s->got++;
    return 1;
}

void doc_spool_close(struct doc_spool *s)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    buf_cleanup(&s->wbuf);
    buf_cleanup(&s->rbuf);
    buf_cleanup(&s->doc);
}
