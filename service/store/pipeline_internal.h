/*
 * pipeline_internal.h: what the pipeline's store files share (pipeline.c,
 * claim.c, batch_files.c): statement helpers that put PostgreSQL's error in
 * err, the end of a multi-statement transition, and the job's settings.
 */
#ifndef SVC_STORE_PIPELINE_INTERNAL_H
#define SVC_STORE_PIPELINE_INTERNAL_H

#include "store/pipeline.h"

/* Run sql with n text parameters; the result, or NULL with err set ("what: ..."). */
PGresult *pipe_q(PGconn *c, const char *sql, int n, const char *const *vals, const char *what,
                 char *err, size_t errlen);
/* The same, the result dropped; whether it succeeded. */
bool pipe_run(PGconn *c, const char *sql, int n, const char *const *vals, const char *what,
              char *err, size_t errlen);
void pipe_rollback(PGconn *c);

/* One statement of a transaction: sql with n text parameters; what names it in err. */
struct step {
    const char *sql;
    int n;
    const char *const *vals;
    const char *what;
};

/*
 * End the open transaction: if ok (nothing failed so far), run steps in
 * order and COMMIT; ROLLBACK when anything failed, before or here. Returns
 * whether it committed; err says what failed.
 */
bool pipe_commit_steps(PGconn *c, bool ok, const struct step *steps, size_t n, char *err,
                       size_t errlen);
/* Read b->job_id's settings (model, task, dims, normalize, state, ...) into b. */
bool pipe_load_job(PGconn *c, struct pipe_batch *b, char *err, size_t errlen);

#endif
