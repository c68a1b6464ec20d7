/* openai_files.c: files of the OpenAI-compatible surface (see openai_files.h). */
#include "store/openai_files.h"

#include "store/db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

bool oai_new_id(const char *prefix, char out[OAI_ID_MAX])
{
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char r[24];
    if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
        return false;
    size_t p = strlen(prefix);
    if (p + sizeof(r) + 1 > OAI_ID_MAX)
        return false;
    memcpy(out, prefix, p);
    for (size_t i = 0; i < sizeof(r); i++)
        out[p + i] = al[r[i] % 62]; /* 62 * 4 = 248: a slight bias, harmless for ids */
    out[p + sizeof(r)] = '\0';
    return true;
}

static bool exec_ok(PGresult *r, PGconn *c, const char *what, char *err, size_t errlen)
{
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        db_error(r, c, what, err, errlen);
    PQclear(r);
    return ok;
}

bool oai_file_write_begin(struct oai_file_writer *w, PGconn *c, int64_t key_id, const char *purpose,
                          const char *filename, char *err, size_t errlen)
{
    memset(w, 0, sizeof(*w));
    w->c = c;
    buf_init(&w->pending, OAI_PART_BYTES);
    if (!oai_new_id("file-", w->id)) {
        snprintf(err, errlen, "could not read random bytes");
        return false;
    }
    char key[24];
    snprintf(key, sizeof(key), "%lld", (long long)key_id);
    const char *v[4] = {w->id, key, purpose, filename};
    return exec_ok(
        PQexecParams(c,
                     "INSERT INTO openai_files (id, api_key_id, purpose, filename, bytes)"
                     " VALUES ($1, $2, $3, $4, 0)",
                     4, NULL, v, NULL, NULL, 0),
        c, "could not store the file", err, errlen);
}

static bool store_part(struct oai_file_writer *w, char *err, size_t errlen)
{
    if (!w->pending.len)
        return true;
    char part[16];
    snprintf(part, sizeof(part), "%d", w->part);
    const char *v[3] = {w->id, part, w->pending.data};
    int lens[3] = {0, 0, (int)w->pending.len};
    int fmts[3] = {0, 0, 1};
    bool ok = exec_ok(PQexecParams(w->c,
                                   "INSERT INTO openai_file_parts (file_id, part, data)"
                                   " VALUES ($1, $2, $3)",
                                   3, NULL, v, lens, fmts, 0),
                      w->c, "could not store the file", err, errlen);
    w->part++;
    buf_reset(&w->pending);
    return ok;
}

bool oai_file_write(struct oai_file_writer *w, const void *data, size_t len, char *err,
                    size_t errlen)
{
    const char *p = data;
    while (len) {
        size_t room = OAI_PART_BYTES - w->pending.len, n = len < room ? len : room;
        if (!buf_append(&w->pending, p, n)) {
            snprintf(err, errlen, "out of memory");
            return false;
        }
        p += n;
        len -= n;
        w->bytes += (int64_t)n;
        if (w->pending.len == OAI_PART_BYTES && !store_part(w, err, errlen))
            return false;
    }
    return true;
}

bool oai_file_write_finish(struct oai_file_writer *w, char *err, size_t errlen)
{
    if (!store_part(w, err, errlen))
        return false;
    char bytes[24];
    snprintf(bytes, sizeof(bytes), "%lld", (long long)w->bytes);
    const char *v[2] = {w->id, bytes};
    return exec_ok(PQexecParams(w->c, "UPDATE openai_files SET bytes = $2 WHERE id = $1", 2, NULL,
                                v, NULL, NULL, 0),
                   w->c, "could not store the file", err, errlen);
}

void oai_file_write_cleanup(struct oai_file_writer *w)
{
    buf_cleanup(&w->pending);
}

#define FILE_COLS "id, purpose, filename, bytes, extract(epoch FROM created_at)::bigint"

static void file_row(PGresult *r, int i, struct oai_file *f)
{
    memset(f, 0, sizeof(*f));
    snprintf(f->id, sizeof(f->id), "%s", PQgetvalue(r, i, 0));
    snprintf(f->purpose, sizeof(f->purpose), "%s", PQgetvalue(r, i, 1));
    snprintf(f->filename, sizeof(f->filename), "%s", PQgetvalue(r, i, 2));
    f->bytes = db_int(PQgetvalue(r, i, 3));
    f->created_at = db_int(PQgetvalue(r, i, 4));
}

enum jobs_result oai_file_get(PGconn *c, int64_t key_id, const char *id, struct oai_file *out,
                              char *err, size_t errlen)
{
    char key[24];
    snprintf(key, sizeof(key), "%lld", (long long)key_id);
    const char *v[2] = {id, key};
    PGresult *r =
        PQexecParams(c, "SELECT " FILE_COLS " FROM openai_files WHERE id = $1 AND api_key_id = $2",
                     2, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        db_error(r, c, "could not read the file", err, errlen);
        PQclear(r);
        return JOBS_ERROR;
    }
    enum jobs_result res = PQntuples(r) == 1 ? JOBS_OK : JOBS_NOT_FOUND;
    if (res == JOBS_OK)
        file_row(r, 0, out);
    PQclear(r);
    return res;
}

enum jobs_result oai_file_list(PGconn *c, int64_t key_id, const char *after, const char *purpose,
                               bool asc, int limit, struct oai_file *out, size_t *n, bool *has_more,
                               char *err, size_t errlen)
{
    char key[24], lim[16];
    snprintf(key, sizeof(key), "%lld", (long long)key_id);
    snprintf(lim, sizeof(lim), "%d", limit + 1);
    const char *v[4] = {key, after, purpose, lim};
    *n = 0;
    *has_more = false;
    if (after) {
        PGresult *r =
            PQexecParams(c, "SELECT 1 FROM openai_files WHERE id = $1 AND api_key_id = $2", 2, NULL,
                         (const char *const[]){after, key}, NULL, NULL, 0);
        bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
        bool found = ok && PQntuples(r) == 1;
        if (!ok)
            db_error(r, c, "could not list files", err, errlen);
        PQclear(r);
        if (!ok)
            return JOBS_ERROR;
        if (!found)
            return JOBS_NOT_FOUND;
    }
    PGresult *r =
        PQexecParams(c,
                     asc ? "SELECT " FILE_COLS " FROM openai_files f WHERE api_key_id = $1"
                           " AND ($3::text IS NULL OR purpose = $3)"
                           " AND ($2::text IS NULL OR (created_at, id) >"
                           "   (SELECT created_at, id FROM openai_files WHERE id = $2))"
                           " ORDER BY created_at, id LIMIT $4"
                         : "SELECT " FILE_COLS " FROM openai_files f WHERE api_key_id = $1"
                           " AND ($3::text IS NULL OR purpose = $3)"
                           " AND ($2::text IS NULL OR (created_at, id) <"
                           "   (SELECT created_at, id FROM openai_files WHERE id = $2))"
                           " ORDER BY created_at DESC, id DESC LIMIT $4",
                     4, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        db_error(r, c, "could not list files", err, errlen);
        PQclear(r);
        return JOBS_ERROR;
    }
    int rows = PQntuples(r);
    *has_more = rows > limit;
    for (int i = 0; i < rows && i < limit; i++)
        file_row(r, i, &out[(*n)++]);
    PQclear(r);
    return JOBS_OK;
}

enum jobs_result oai_file_delete(PGconn *c, int64_t key_id, const char *id, char *err,
                                 size_t errlen)
{
    char key[24];
    snprintf(key, sizeof(key), "%lld", (long long)key_id);
    const char *v[2] = {id, key};
    PGresult *r = PQexecParams(c, "DELETE FROM openai_files WHERE id = $1 AND api_key_id = $2", 2,
                               NULL, v, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        db_error(r, c, "could not delete the file", err, errlen);
        PQclear(r);
        return JOBS_ERROR;
    }
    enum jobs_result res = db_int(PQcmdTuples(r)) == 1 ? JOBS_OK : JOBS_NOT_FOUND;
    PQclear(r);
    return res;
}

bool oai_file_part(PGconn *c, const char *id, int part, struct buf *out, bool *found, char *err,
                   size_t errlen)
{
    char p[16];
    snprintf(p, sizeof(p), "%d", part);
    const char *v[2] = {id, p};
    PGresult *r =
        PQexecParams(c, "SELECT data FROM openai_file_parts WHERE file_id = $1 AND part = $2", 2,
                     NULL, v, NULL, NULL, 1);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        db_error(r, c, "could not read the file", err, errlen);
        PQclear(r);
        return false;
    }
    buf_reset(out);
    *found = PQntuples(r) == 1;
    bool ok = !*found || buf_append(out, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0));
    PQclear(r);
    if (!ok)
        snprintf(err, errlen, "out of memory");
    return ok;
}
