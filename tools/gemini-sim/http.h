/* http.h: request routing and reply helpers shared by the simulator's API handlers. */
#ifndef SIM_HTTP_H
#define SIM_HTTP_H

#include "sim.h"

struct MHD_Connection;

enum route_kind {
    RT_NONE,
    RT_CREATE,
    RT_SYNC_BATCH,
    RT_SYNC_ONE,
    RT_GET,
    RT_LIST,
    RT_CANCEL,
    RT_DELETE,
    RT_UPLOAD,
    RT_FILE_GET,
    RT_FILE_DELETE,
    RT_FILE_LIST,
    RT_DOWNLOAD
};

struct route {
    enum route_kind kind;
    char version[8]; /* "v1" or "v1beta" */
    char model[96];
    char verb[48];
    char id[130];
    const char *body; /* request body, NUL-terminated; borrowed */
    size_t body_len;
};

#define REPLY_MAX_HEADERS 6
struct reply {
    int status;
    struct buf body;
    const char *content_type; /* default application/json */
    bool hang_up;             /* close the connection without answering (a cut-off upload) */
    /* a body borrowed from a batch's rendered results instead of body */
    struct sim_batch *shared_batch; /* reference owned by the reply */
    const char *shared_data;
    size_t shared_len;
    struct {
        char name[40];
        char value[600];
    } hdr[REPLY_MAX_HEADERS];
    int n_hdr;
};

/* A count-or-rate fault: true (and the count used up) when it fires. Call under sim->lock. */
bool sim_fault_fire(struct sim *sim, int64_t *count, double rate);

void reply_init(struct reply *r);
void reply_cleanup(struct sim *sim, struct reply *r);
void reply_header(struct reply *r, const char *name, const char *value);
void reply_error(struct reply *r, int http, const char *status, const char *msg);
void reply_error_details(struct reply *r, int http, const char *status, const char *msg,
                         const char *details);
void reply_perr(struct reply *r, const struct sim_perr *e);
/* Set a 500 reply; returns false for use in expressions. */
bool reply_oom(struct reply *r);
const char *req_arg(struct MHD_Connection *c, const char *name);
const char *req_header(struct MHD_Connection *c, const char *name);

void api_batches(struct sim *sim, struct MHD_Connection *c, struct route *rt, struct reply *r);
void api_files(struct sim *sim, struct MHD_Connection *c, struct route *rt, struct reply *r);
void api_control(struct sim *sim, struct MHD_Connection *c, const char *method, const char *path,
                 struct route *rt, struct reply *r);

#endif
