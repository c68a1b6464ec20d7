/*
 * openai_files.h: files of the OpenAI-compatible surface in PostgreSQL
 * (migrations/0008): a row per file and its bytes in parts of
 * OAI_PART_BYTES, written as they come and read a part at a time, so that
 * no file is ever held whole in memory. Every call is scoped to an API key.
 */
#ifndef SVC_STORE_OPENAI_FILES_H
#define SVC_STORE_OPENAI_FILES_H

#include <libpq-fe.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/jobs.h"
#include "util/buf.h"
#include "util/compiler.h"

#define OAI_PART_BYTES (1u << 20)
#define OAI_ID_MAX     40

/* A new id: prefix ("file-", "batch_") and 24 random letters and digits. */
bool oai_new_id(const char *prefix, char out[OAI_ID_MAX]) SVC_MUSTCHECK;

struct oai_file {
    char id[OAI_ID_MAX];
    char purpose[16]; /* batch, batch_output */
    char filename[256];
    int64_t bytes;
    int64_t created_at; /* Unix seconds */
};

/*
 * Writing a file, inside the caller's transaction on c: begin inserts the
 * file's row, write appends bytes (a part is stored each OAI_PART_BYTES),
 * finish stores the last part and the size. Memory: one part.
 */
struct oai_file_writer {
    PGconn *c;
    char id[OAI_ID_MAX];
    int part;
    int64_t bytes;
    struct buf pending;
};
bool oai_file_write_begin(struct oai_file_writer *w, PGconn *c, int64_t key_id, const char *purpose,
                          const char *filename, char *err, size_t errlen) SVC_MUSTCHECK;
bool oai_file_write(struct oai_file_writer *w, const void *data, size_t len, char *err,
                    size_t errlen) SVC_MUSTCHECK;
bool oai_file_write_finish(struct oai_file_writer *w, char *err, size_t errlen) SVC_MUSTCHECK;
/* Free the writer's memory (the caller rolls its transaction back on failure). */
void oai_file_write_cleanup(struct oai_file_writer *w);

/* The file id of key_id: JOBS_OK, JOBS_NOT_FOUND, JOBS_ERROR. */
enum jobs_result oai_file_get(PGconn *c, int64_t key_id, const char *id, struct oai_file *out,
                              char *err, size_t errlen) SVC_MUSTCHECK;
/* Files of key_id, newest first (asc: oldest first), after the file
 * "after" (NULL: from the start), of purpose (NULL: any); up to limit into
 * out, *has_more when more follow. JOBS_NOT_FOUND when after is unknown. */
enum jobs_result oai_file_list(PGconn *c, int64_t key_id, const char *after, const char *purpose,
                               bool asc, int limit, struct oai_file *out, size_t *n, bool *has_more,
                               char *err, size_t errlen) SVC_MUSTCHECK;
/* Delete the file id of key_id with its parts. */
enum jobs_result oai_file_delete(PGconn *c, int64_t key_id, const char *id, char *err,
                                 size_t errlen) SVC_MUSTCHECK;
/* Part number part of file id into out (replacing its contents): *found
 * false after the last part. */
bool oai_file_part(PGconn *c, const char *id, int part, struct buf *out, bool *found, char *err,
                   size_t errlen) SVC_MUSTCHECK;

#endif
