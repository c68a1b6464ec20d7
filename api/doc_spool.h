/*
 * doc_spool.h: validated documents kept in an unlinked temporary file until
 * they can be stored: a JSON job body whose options come after (or around)
 * its documents is only known once it has ended. The file has no name (it
 * vanishes with the descriptor, also when the process dies); memory holds a
 * write and a read buffer plus one document.
 */
#ifndef API_DOC_SPOOL_H
#define API_DOC_SPOOL_H

#include "store/jobs_ingest.h"
#include "util/buf.h"
#include "util/compiler.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct doc_spool {
    int fd;       /* -1: not open */
    uint64_t n;   /* documents written */
    uint64_t got; /* documents read back */
    struct buf wbuf, rbuf, doc;
    size_t roff; /* read position in rbuf */
    int err_no;  /* errno of the failure that made a call return false */
};

/* Open an empty spool in dir; a document may be up to max_doc bytes. On
 * failure err says why (errno in s->err_no) and s stays closed. */
bool doc_spool_open(struct doc_spool *s, const char *dir, size_t max_doc, char *err,
                    size_t errlen) SVC_MUSTCHECK;
/* Append a copy of d. */
bool doc_spool_add(struct doc_spool *s, const struct ingest_doc *d) SVC_MUSTCHECK;
/* Forget every document (the file is emptied). */
bool doc_spool_clear(struct doc_spool *s) SVC_MUSTCHECK;
/* Write out what is buffered and read from the first document on. */
bool doc_spool_rewind(struct doc_spool *s) SVC_MUSTCHECK;
/* The next document after doc_spool_rewind: 1 with *d filled (borrowed
 * until the next call), 0 after the last, -1 on a read error. */
int doc_spool_next(struct doc_spool *s, struct ingest_doc *d);
/* Close (the file goes away) and free; a zeroed or closed spool is fine. */
void doc_spool_close(struct doc_spool *s);

#endif
