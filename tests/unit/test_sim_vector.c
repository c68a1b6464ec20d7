/* test_sim_vector.c: the simulator's vector function, token count and settings table. */
#include "sim.h"

#include <criterion/criterion.h>

#include <math.h>
#include <string.h>

Test(sim_vector, unit_length_and_deterministic)
{
    const struct sim_model *m = sim_model_find("gemini-embedding-001");
    cr_assert_not_null(m);
    cr_assert_eq(m->native_dims, 3072);
    cr_assert(m->batch);
    static float a[3072], b[3072];
    sim_vector(m, SIM_TASK_RETRIEVAL_DOCUMENT, "hello", 5, a);
    sim_vector(m, SIM_TASK_RETRIEVAL_DOCUMENT, "hello", 5, b);
    cr_assert_eq(memcmp(a, b, sizeof(a)), 0);
    double s = 0;
    for (int i = 0; i < 3072; i++)
        s += (double)a[i] * (double)a[i];
    cr_assert(fabs(sqrt(s) - 1.0) < 1e-6, "norm %f", sqrt(s));
    sim_vector(m, SIM_TASK_RETRIEVAL_QUERY, "hello", 5, b);
    cr_assert_neq(memcmp(a, b, sizeof(a)), 0, "task type changes the vector");
    sim_vector(m, SIM_TASK_RETRIEVAL_DOCUMENT, "hellp", 5, b);
    cr_assert_neq(memcmp(a, b, sizeof(a)), 0, "text changes the vector");
    const struct sim_model *old = sim_model_find("text-embedding-004");
    cr_assert_not_null(old);
    cr_assert_not(old->batch, "text-embedding-004 has no batch support");
    sim_vector(old, SIM_TASK_RETRIEVAL_DOCUMENT, "hello", 5, b);
    cr_assert(a[0] != b[0] || a[1] != b[1], "models give unrelated vectors");
    cr_assert_null(sim_model_find("gemini-embedding-00"));
}

Test(sim_vector, token_count_rule)
{
    cr_assert_eq(sim_token_count("", 0), 0);
    cr_assert_eq(sim_token_count(" ", 1), 1, "non-empty text counts at least 1");
    cr_assert_eq(sim_token_count("abcd", 4), 1);
    cr_assert_eq(sim_token_count("abcde", 5), 2);
    cr_assert_eq(sim_token_count("first chunk", 11), 4);
    cr_assert_eq(sim_token_count("a, b!", 5), 4);
    cr_assert_eq(sim_token_count("日本語", strlen("日本語")), 3, "one per code point");
    cr_assert_eq(sim_token_count("café", strlen("café")), 2);
}

Test(sim_config, flags_and_json_round_trip)
{
    struct sim_config cfg;
    sim_config_defaults(&cfg);
    char *argv[] = {"gemini-sim",         "--port=0",
                    "--item-error-rate",  "0.25",
                    "--shuffle",          "--fault-scope=create,get",
                    "--retry-delay=2.5s", NULL};
    cr_assert_eq(sim_config_parse_args(&cfg, 7, argv), 0);
    cr_assert_eq(cfg.port, 0);
    cr_assert(cfg.s.item_error_rate == 0.25);
    cr_assert(cfg.s.shuffle);
    cr_assert(sim_scope_has(cfg.s.fault_scope, "get"));
    cr_assert_not(sim_scope_has(cfg.s.fault_scope, "list"));
    cr_assert(sim_scope_has("all", "download"));

    json_object *o = sim_settings_to_json(&cfg.s);
    struct sim_settings s2;
    memset(&s2, 0, sizeof(s2));
    char err[256];
    cr_assert(sim_settings_apply_json(&s2, o, err, sizeof(err)), "%s", err);
    cr_assert_eq(memcmp(&s2, &cfg.s, sizeof(s2)), 0, "JSON round trip is lossless");
    json_object_put(o);
}

Test(sim_config, bad_values_are_refused)
{
    struct sim_config cfg;
    sim_config_defaults(&cfg);
    char *bad1[] = {"gemini-sim", "--item-error-rate=2", NULL};
    char *bad2[] = {"gemini-sim", "--no-such-flag", NULL};
    char *bad3[] = {"gemini-sim", "--fault-scope=everything", NULL};
    char *bad4[] = {"gemini-sim", "--port", NULL};
    cr_assert_eq(sim_config_parse_args(&cfg, 2, bad1), -1);
    cr_assert_eq(sim_config_parse_args(&cfg, 2, bad2), -1);
    cr_assert_eq(sim_config_parse_args(&cfg, 2, bad3), -1);
    cr_assert_eq(sim_config_parse_args(&cfg, 2, bad4), -1);

    struct sim_settings before = cfg.s;
    char err[256];
    json_object *o = json_tokener_parse("{\"seed\":7,\"latency_ms\":\"x\"}");
    cr_assert_not(sim_settings_apply_json(&cfg.s, o, err, sizeof(err)));
    cr_assert_eq(memcmp(&before, &cfg.s, sizeof(before)), 0, "a bad update changes nothing");
    json_object_put(o);
    o = json_tokener_parse("{\"retry_delay\":\"soon\"}");
    cr_assert_not(sim_settings_apply_json(&cfg.s, o, err, sizeof(err)));
    json_object_put(o);
}
