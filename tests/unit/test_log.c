/*
 * test_log.c - the log sink: levels, one line per event, and redaction of tokens and key
 * material at every level (a secret formatted into a message by mistake never reaches the file).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "log.h"

#define JWT                                                                                        \
    "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJhdWQiOiJodHRwczovL3ZhdWx0LmF6dXJlLm5ldCJ9."           \
    "c2lnbmF0dXJlLWJ5dGVzLWhlcmU"

struct redact_case {
    const char *in;
    const char *secret; /* must not survive */
    const char *keep;   /* must survive */
};

static const struct redact_case cases[] = {
    { "token " JWT " used", "eyJhbGci", "used" },
    { "Authorization: Bearer abc.def-ghi_jkl", "abc.def", "Authorization: Bearer [REDACTED]" },
    { "{\"access_token\":\"s3cr3t-value-1234\",\"expires_in\":\"3599\"}", "s3cr3t",
      "\"expires_in\":\"3599\"" },
    { "{\"k\": \"AAECAwQFBgcICQoLDA0ODw\"}", "AAECAwQF", "{\"k\": \"" },
    { "{\"kty\":\"RSA\",\"n\":\"pub\",\"d\":\"priv\",\"qi\":\"x1y2z3\"}", "priv", "\"n\":\"pub\"" },
    { "url=https://a.blob.core.windows.net/c?sv=2020&sig=AbCdEf%2Bghi&se=1", "AbCdEf", "sv=2020" },
    { "client_assertion=eyJhbGc.eyJzdWI.sig&client_id=abc", "eyJhbGc", "client_id=abc" },
    { "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY----- "
      "after",
      "MIIEvQ", " after" },
    { "blob QmFzZTY0RW5jb2RlZEtleU1hdGVyaWFsVGhhdElzTG9uZ0Vub3VnaDEyMzQ1Njc4 end", "QmFzZTY0",
      " end" },
    { "{\"key\":\"{\\\"kty\\\":\\\"oct\\\",\\\"k\\\":\\\"c2VjcmV0\\\"}\"}", "c2VjcmV0",
      "{\"key\":\"" },
};

static void
test_redact_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *s = strdup(cases[i].in);
        size_t n;

        assert_non_null(s);
        n = skr_log_redact(s);
        if (strstr(s, cases[i].secret) != NULL || strstr(s, cases[i].keep) == NULL || n == 0) {
            fail_msg("case %zu: redacted to '%s'", i, s);
        }
        free(s);
    }
}

static void
test_redact_keeps_ordinary_text(void **state)
{
    static const char *const plain[] = {
        "event=release key_id='mykey' status=403 err=SKR_E_POLICY",
        "GET https://kdsintf.amd.com/vcek/v1/Milan/cert_chain",
        "report version 2 vmpl 0 tcb 7308000000000003",
        "chip id 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "id=5 p=7 d=9",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
        char *s = strdup(plain[i]);

        assert_non_null(s);
        assert_int_equal(skr_log_redact(s), 0);
        assert_string_equal(s, plain[i]);
        free(s);
    }
}

static void
test_levels_and_output(void **state)
{
    char *mem = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&mem, &len);
    enum skr_log_level lvl;

    (void)state;
    assert_non_null(f);
    skr_log_init("t", SKR_LOG_INFO, f);
    skr_log_debug("hidden %d", 1);
    skr_log_info("shown %s", "yes");
    skr_log(SKR_LOG_ERROR, "token=%s", "abcdef");
    skr_log_set_level(SKR_LOG_DEBUG);
    skr_log_debug("access_token=%s", JWT);
    (void)fflush(f);
    assert_null(strstr(mem, "hidden"));
    assert_non_null(strstr(mem, " t info: shown yes\n"));
    /* values shorter than the marker become stars: redaction never grows a line */
    assert_non_null(strstr(mem, "t error: token=******\n"));
    assert_non_null(strstr(mem, "t debug: access_token=[REDACTED]"));
    assert_null(strstr(mem, "eyJhbGci"));
    assert_null(strstr(mem, "abcdef"));
    skr_log_init("t", SKR_LOG_INFO, NULL);
    (void)fclose(f);
    free(mem);
    assert_int_equal(skr_log_level_parse("DEBUG", &lvl), SKR_OK);
    assert_int_equal(lvl, SKR_LOG_DEBUG);
    assert_int_equal(skr_log_level_parse("Warning", &lvl), SKR_OK);
    assert_int_equal(lvl, SKR_LOG_WARN);
    assert_int_equal(skr_log_level_parse("loud", &lvl), SKR_E_INVALID_ARG);
}

static skr_err
failing(void)
{
    FAIL(SKR_E_DEVICE, "firmware said no");
}

static void
test_log_err(void **state)
{
    char *mem = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&mem, &len);

    (void)state;
    assert_non_null(f);
    skr_log_init("t", SKR_LOG_ERROR, f);
    skr_log_err(failing(), "report fetch failed");
    (void)fflush(f);
    assert_non_null(strstr(mem, "report fetch failed: firmware said no err=SKR_E_DEVICE at "
                                "test_log.c:"));
    skr_log_init("t", SKR_LOG_INFO, NULL);
    (void)fclose(f);
    free(mem);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redact_table),
        cmocka_unit_test(test_redact_keeps_ordinary_text),
        cmocka_unit_test(test_levels_and_output),
        cmocka_unit_test(test_log_err),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
