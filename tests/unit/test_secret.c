/*
 * test_secret.c - skr_secret: zeroed on creation, copied exactly, size limits, live count
 * returns to zero, memory excluded from dumps, and the process can be made non-dumpable.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "secret.h"
#include "skr_limits.h"

static void
test_new_free(void **state)
{
    struct skr_secret *s = NULL;
    size_t before = skr_secret_live();

    (void)state;
    assert_int_equal(skr_secret_new(32, &s), SKR_OK);
    assert_int_equal(skr_secret_live(), before + 1);
    assert_int_equal(s->len, 32);
    assert_true(skr_span_is_zero(skr_secret_span(s)));
    memset(s->ptr, 0xaa, s->len);
    skr_secret_free(s);
    assert_int_equal(skr_secret_live(), before);
    skr_secret_free(NULL);
}

static void
test_from(void **state)
{
    _cleanup_(skr_secret_freep) struct skr_secret *s = NULL;

    (void)state;
    assert_int_equal(skr_secret_from(skr_span_str("key material"), &s), SKR_OK);
    assert_int_equal(s->len, 12);
    assert_memory_equal(s->ptr, "key material", 12);
}

static void
test_limits(void **state)
{
    struct skr_secret *s = NULL;

    (void)state;
    assert_int_equal(skr_secret_new(0, &s), SKR_E_TOO_LARGE);
    assert_int_equal(skr_secret_new(SKR_MAX_SECRET_BYTES + 1, &s), SKR_E_TOO_LARGE);
    assert_null(s);
    assert_int_equal(skr_secret_new(SKR_MAX_SECRET_BYTES, &s), SKR_OK);
    skr_secret_free(s);
}

/* With RLIMIT_MEMLOCK at 0 mlock fails: the secret still works, and the failure is counted. */
static void
test_lock_failure_reported(void **state)
{
    pid_t pid;
    int status = 0;

    (void)state;
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit rl = { 0, 0 };
        struct skr_secret *s = NULL;
        size_t before;

        if (setrlimit(RLIMIT_MEMLOCK, &rl) != 0) {
            _exit(3);
        }
        before = skr_secret_lock_failures();
        if (skr_secret_new(16, &s) != SKR_OK) {
            _exit(4);
        }
        /* root may lock regardless of the limit (CAP_IPC_LOCK): then nothing failed. */
        if (s->is_locked) {
            _exit(skr_secret_lock_failures() == before ? 0 : 5);
        }
        _exit(skr_secret_lock_failures() == before + 1 ? 0 : 6);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void
test_harden(void **state)
{
    pid_t pid;
    int status = 0;

    (void)state;
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 1) {
            _exit(3);
        }
        if (skr_process_harden() != SKR_OK) {
            _exit(4);
        }
        _exit(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0 ? 0 : 5);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_free), cmocka_unit_test(test_from),
        cmocka_unit_test(test_limits),   cmocka_unit_test(test_lock_failure_reported),
        cmocka_unit_test(test_harden),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
