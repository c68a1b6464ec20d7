/*
 * rel.h: shared pieces of the reliability suite (tests/reliability/README.md).
 *
 * Scale: EMBEDD_REL_SCALE=ci (default; what CI runs) or full (the figures in
 * docs/RELIABILITY.md, run by tests/reliability/run.sh).
 * Report: when EMBEDD_REL_REPORT names a file, every scenario appends one JSON
 * line {"scenario","checked","result","figures":{...}} that run.sh turns into
 * the table of docs/RELIABILITY.md.
 */
#ifndef TESTS_RELIABILITY_REL_H
#define TESTS_RELIABILITY_REL_H

#include "harness.h"
#include "svch.h"

#include <stdbool.h>
#include <stdint.h>

/* true when EMBEDD_REL_SCALE=full */
bool rel_full(void);
/* ci when not full, else full */
int rel_pick(int ci, int full);

/* Append one report line (no-op unless EMBEDD_REL_REPORT is set). figures_json
 * is a JSON object text, e.g. "{\"kills\":12,\"chunks\":20000}". */
void rel_report(const char *scenario, const char *checked, const char *result,
                const char *figures_json);

/* Resident set size of a process in KiB (from /proc/PID/status), -1 if unknown. */
long rel_rss_kib(pid_t pid);

#endif

/* ---- scenario cluster: gemini-sim + N embedd serve processes on one database ---- */

#define REL_MAX_NODES 4

struct rel_node {
    pid_t pid;
    int port;
    char base[64]; /* http://127.0.0.1:PORT */
    int starts;
    char db_arg[600]; /* --database-url=... with application_name=embedd-rel-<i> */
};

struct rel {
    struct dbh db;
    struct simh sim;
    int n;
    struct rel_node node[REL_MAX_NODES];
    char dir[64];   /* logs and port files */
    char *argv[48]; /* argv of every node but the port file */
    char key[64];   /* an API key */
    char pgdir[64]; /* private PostgreSQL cluster ("" when the shared one is used) */
    char pgurl[256];
    int kills; /* kill -9 delivered */
};

/* Start gemini-sim (sim_flags), a fresh database (in a private PostgreSQL
 * cluster when private_pg, so that it can be stopped), and n embedd serve
 * processes with the common flags plus svc_flags. */
void rel_start(struct rel *r, int n, bool private_pg, const char *const *sim_flags,
               const char *const *svc_flags);
/* SIGTERM every node (asserting exit 0 and clean logs: no sanitizer report,
 * no secret), stop the simulator, drop the database (and private cluster). */
void rel_stop(struct rel *r);
/* Start node i again (after a kill or a SIGTERM) and wait until it listens. */
void rel_spawn(struct rel *r, int i);
/* kill -9 node i, reap it and wait until PostgreSQL has ended its sessions:
 * a COMMIT sent just before the kill may still be in flight at the server,
 * and what the test reads next must see whether it committed. */
void rel_kill9(struct rel *r, int i);
/* SIGTERM node i; wait up to wait_ms; returns the exit status (-1 if it did
 * not exit in time, then it is killed), *took_ms how long it took. */
int rel_term(struct rel *r, int i, int wait_ms, int64_t *took_ms);
/* Stop / start the private PostgreSQL cluster. */
void rel_pg(struct rel *r, const char *cmd);
/* How many lines of node i's log contain needle. */
int rel_log_count(struct rel *r, int i, const char *needle);

/* An HTTP call to node i with the API key, the whole response in *out
 * (simh_resp_free it; curl_code not 0 when the transfer failed). */
void rel_call(struct rel *r, int i, const char *method, const char *path, const char *body,
              struct simh_resp *out);
/* An HTTP call to node i with the API key; the parsed reply when want > 0
 * (asserted), else NULL and the status in *status (0: transport failure). */
json_object *rel_api(struct rel *r, int i, const char *method, const char *path, const char *body,
                     long want, long *status);
/* POST a job to node i; returns its id (malloc'd). */
char *rel_submit(struct rel *r, int i, const char *body);
/* A job body of docs documents of about sentences sentences each; every
 * sentence is unique across (seed, doc, sentence), so no two chunks share a
 * text. extra: more top-level members ("\"output_dimensionality\":128,"), or "". */
char *rel_job_body(int docs, int sentences, unsigned seed, const char *extra);
/* Wait (up to 30 s) until the work is in a phase, so that a kill lands in it:
 * "intent" (a batch's intent recorded, its create under way), "poll" (a
 * batch submitted), "upload" (a file batch's JSONL being uploaded),
 * "create" (uploaded and recorded, being created), "store" or "download" (a
 * batch succeeded at Google, its results not stored yet). false if every
 * job became terminal first, or on timeout. */
bool rel_wait_phase(struct rel *r, const char *phase);
/* Wait until every job in the database is terminal. */
void rel_wait_terminal(struct rel *r, int timeout_ms);

struct rel_audit {
    long jobs, chunks, succeeded, failed;
    long vectors_checked;
    long google_batches; /* batches created at Google per our database */
    long texts_sent;     /* texts Google embedded per our database (jobs' stats) */
    long sim_creates, sim_texts, sim_unique, sim_duplicates, sim_sync_texts;
    long resent; /* resubmissions, each one accounted for in the jobs' stats */
};
/*
 * The audit every scenario ends with (asserts):
 * - every job is terminal; its stats add up and match its chunks' states;
 * - every succeeded chunk has exactly one stored vector, equal to the
 *   simulator's deterministic vector for its text (normalised as asked);
 *   every failed chunk has its reason; none is left pending or in flight;
 * - Google was paid for nothing we do not know of: the simulator's accepted
 *   creates equal our batches with a Google name, the texts it received equal
 *   the texts our stats say were sent, and every text it saw twice is a
 *   resubmission our stats account for (none at all unless allow_resend);
 * - no batch is left open, no lease is left held.
 */
void rel_audit(struct rel *r, bool allow_resend, struct rel_audit *a);
/* The audit as JSON members for a report ("\"chunks\":..,\"vectors_checked\":..,..."). */
void rel_audit_json(const struct rel_audit *a, char *out, size_t n);
