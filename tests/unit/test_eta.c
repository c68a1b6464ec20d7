/* test_eta.c: the ETA arithmetic of store/eta.h (jobs_eta_compute). */
#include "store/eta.h"

#include <criterion/criterion.h>

#include <math.h>

Test(eta, nothing_to_go_on)
{
    struct job_eta e;
    struct job_eta_inputs in = {.pending = 10, .in_flight = 5, .claimed = 5, .started = 0};
    jobs_eta_compute(&in, 1000, &e);
    cr_assert_not(e.known, "nothing claimed yet");
    in.started = 900;
    in.open = 1;
    in.newest_open = 990;
    jobs_eta_compute(&in, 1000, &e);
    cr_assert_not(e.known, "no finished batch here or in recent jobs");
    in.pending = in.in_flight = 0;
    in.done = 3;
    in.done_s = 10;
    jobs_eta_compute(&in, 1000, &e);
    cr_assert_not(e.known, "nothing left");
}

Test(eta, open_batches_end_a_batch_duration_after_their_claim)
{
    struct job_eta e;
    struct job_eta_inputs in = {.pending = 0,
                                .in_flight = 20,
                                .claimed = 40,
                                .started = 900,
                                .done = 2,
                                .done_s = 60,
                                .open = 2,
                                .newest_open = 980};
    jobs_eta_compute(&in, 1000, &e);
    cr_assert(e.known);
    cr_assert_eq(e.seconds, 40); /* 980 + 60 - 1000 */
    cr_assert_str_eq(e.source, "job");
    cr_assert_eq(e.batches_observed, 2);
    cr_assert_lt(e.chunks_per_second, 0, "no pending chunks: no claim rate used");
    cr_assert_eq(e.remaining_chunks, 20);
    cr_assert_eq(e.open_batches, 2);
    /* overdue: counts as ending now */
    jobs_eta_compute(&in, 5000, &e);
    cr_assert(e.known);
    cr_assert_eq(e.seconds, 1);
}

Test(eta, pending_chunks_at_the_claim_rate_then_a_batch)
{
    struct job_eta e;
    /* 100 claimed in 50 s: 2/s; 100 pending: 50 s to claim, then 30 s */
    struct job_eta_inputs in = {.pending = 100,
                                .in_flight = 10,
                                .claimed = 100,
                                .started = 950,
                                .recent = 7,
                                .recent_s = 30,
                                .open = 1,
                                .newest_open = 999};
    jobs_eta_compute(&in, 1000, &e);
    cr_assert(e.known);
    cr_assert_str_eq(e.source, "recent_jobs");
    cr_assert_eq(e.batches_observed, 7);
    cr_assert_eq(e.seconds, 80);
    cr_assert(fabs(e.chunks_per_second - 2) < 1e-9);
    cr_assert_eq(e.remaining_chunks, 110);
    /* the job's own batches win over recent jobs' */
    in.done = 1;
    in.done_s = 10;
    jobs_eta_compute(&in, 1000, &e);
    cr_assert_str_eq(e.source, "job");
    cr_assert_eq(e.seconds, 60);
}
