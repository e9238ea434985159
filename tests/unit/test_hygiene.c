/*
 * test_hygiene.c - secret hygiene of the process (issue #6), each in a child process:
 *   - freed secret memory is wiped, every byte of every page (skr_secret_test_keep_freed keeps
 *     the freed pages mapped read-only so that they can be read);
 *   - mlock() failure is reported: with RLIMIT_MEMLOCK 0 and without CAP_IPC_LOCK (root drops
 *     to nobody first, so the check runs here too) the secret works, is_locked is false, the
 *     count rises and the hook a daemon logs from is called;
 *   - skr_process_harden makes the process non-dumpable, as the kernel shows it to others: the
 *     /proc/PID files of a non-root process become root's;
 *   - core dumps: a dumpable process that aborts writes a core file in which a skr_secret's
 *     bytes are absent (MADV_DONTDUMP) while a heap buffer's are present; after
 *     skr_process_harden the same abort writes no core file at all. Skipped when this machine
 *     writes no core for the control child (core_pattern piped elsewhere, or a container).
 */
#define _GNU_SOURCE /* setresuid, memmem */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "secret.h"

/* skip() never returns (it longjmps out of the test); cmocka 1.1.5 does not say so, and gcc
 * -fanalyzer would follow a skipped test into a NULL dereference. */
void _skip(const char *const file, const int line) __attribute__((noreturn));

#define NOBODY 65534

/* Runs fn in a child; returns its exit status (or 100 + signal when it was killed). */
static int
in_child(int (*fn)(void))
{
    int status = 0;
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0) {
        _exit(fn());
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status)) {
        return 100 + WTERMSIG(status);
    }
    return WEXITSTATUS(status);
}

/* root: become nobody (no capabilities left); others stay who they are. */
static int
drop_root(void)
{
    if (geteuid() != 0) {
        return 0;
    }
    if (setgroups(0, NULL) != 0 || setresgid(NOBODY, NOBODY, NOBODY) != 0 ||
        setresuid(NOBODY, NOBODY, NOBODY) != 0) {
        return -1;
    }
    return 0;
}

/* ---- freed secret memory is wiped ---------------------------------------------------------- */

static int
child_freed_wiped(void)
{
    static const size_t sizes[] = { 1, 32, 4095, 4096, 4097, 12000 };

    skr_secret_test_keep_freed(true);
    for (size_t i = 0; i < SKR_ARRAY_LEN(sizes); i++) {
        struct skr_secret *s = NULL;
        const uint8_t *p;
        size_t map_len;

        if (skr_secret_new(sizes[i], &s) != SKR_OK) {
            return 3;
        }
        memset(s->ptr, 0xa5, s->map_len); /* the whole mapping, slack included */
        p = s->ptr;
        map_len = s->map_len;
        if (map_len < sizes[i] || p[0] != 0xa5 || p[map_len - 1] != 0xa5) {
            return 4;
        }
        skr_secret_free(s);
        /* still mapped (read-only) thanks to the hook: every byte must be zero */
        for (size_t j = 0; j < map_len; j++) {
            if (p[j] != 0) {
                return 5;
            }
        }
    }
    {
        /* skr_secret_from, the other way in */
        struct skr_secret *s = NULL;
        const uint8_t *p;
        size_t len;

        if (skr_secret_from(skr_span_str("k=0123456789abcdef0123456789abcdef"), &s) != SKR_OK) {
            return 6;
        }
        p = s->ptr;
        len = s->map_len;
        skr_secret_free(s);
        for (size_t j = 0; j < len; j++) {
            if (p[j] != 0) {
                return 7;
            }
        }
    }
    return skr_secret_live() == 0 ? 0 : 8;
}

static void
test_freed_secret_wiped(void **state)
{
    (void)state;
    assert_int_equal(in_child(child_freed_wiped), 0);
}

/* ---- mlock failure ------------------------------------------------------------------------- */

static size_t hook_calls;
static size_t hook_last;

static void
count_hook(size_t failures)
{
    hook_calls++;
    hook_last = failures;
}

static int
child_lock_failure(void)
{
    struct rlimit rl = { 0, 0 };
    struct skr_secret *s = NULL;
    size_t before;
    void *page;

    if (setrlimit(RLIMIT_MEMLOCK, &rl) != 0 || drop_root() != 0) {
        return 3;
    }
    /* the premise: this process cannot lock a page (else the test could not fail) */
    page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED || mlock(page, 4096) == 0) {
        return 4;
    }
    (void)munmap(page, 4096);
    skr_secret_set_lock_hook(count_hook);
    before = skr_secret_lock_failures();
    if (skr_secret_new(64, &s) != SKR_OK) {
        return 5;
    }
    if (s->is_locked) {
        return 6;
    }
    if (skr_secret_lock_failures() != before + 1 || hook_calls != 1 || hook_last != before + 1) {
        return 7;
    }
    /* still a working secret, wiped and freed as any other */
    memset(s->ptr, 0x5a, s->len);
    if (s->ptr[63] != 0x5a) {
        return 8;
    }
    skr_secret_free(s);
    if (skr_secret_new(64, &s) != SKR_OK || hook_calls != 2 || hook_last != before + 2) {
        return 9;
    }
    skr_secret_free(s);
    skr_secret_set_lock_hook(NULL);
    if (skr_secret_new(64, &s) != SKR_OK || hook_calls != 2 ||
        skr_secret_lock_failures() != before + 3) {
        return 10;
    }
    skr_secret_free(s);
    return skr_secret_live() == 0 ? 0 : 11;
}

static int
child_lock_ok(void)
{
    struct skr_secret *s = NULL;
    size_t before = skr_secret_lock_failures();
    int rc;

    skr_secret_set_lock_hook(count_hook);
    if (skr_secret_new(64, &s) != SKR_OK) {
        return 3;
    }
    rc = s->is_locked && skr_secret_lock_failures() == before && hook_calls == 0 ? 0 : 4;
    skr_secret_free(s);
    return rc;
}

static void
test_lock_failure_reported(void **state)
{
    (void)state;
#if defined(__SANITIZE_ADDRESS__)
    /* ASan replaces mlock() with a stub that always succeeds: a lock failure cannot happen */
    skip();
#endif
    assert_int_equal(in_child(child_lock_failure), 0);
    /* and with the default limit (one page is within any default RLIMIT_MEMLOCK) nothing is
     * reported: the count is not a constant */
    assert_int_equal(in_child(child_lock_ok), 0);
}

/* ---- non-dumpable, as others see it ---------------------------------------------------------- */

static int
child_nondumpable(void)
{
    struct stat st;

    if (drop_root() != 0) {
        return 3;
    }
    /* a change of uid clears the flag by itself: set it back to see the difference */
    if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) != 0 || prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 1) {
        return 4;
    }
    if (getuid() == 0 || stat("/proc/self/status", &st) != 0 || st.st_uid != getuid()) {
        return 5; /* a dumpable process owns its /proc files */
    }
    if (skr_process_harden() != SKR_OK || prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0) {
        return 6;
    }
    if (stat("/proc/self/status", &st) != 0 || st.st_uid != 0) {
        return 7; /* non-dumpable: root's, so that same-uid peers cannot read or ptrace it */
    }
    return 0;
}

static void
test_nondumpable(void **state)
{
    (void)state;
    assert_int_equal(in_child(child_nondumpable), 0);
}

/* ---- core dumps ------------------------------------------------------------------------------ */

static char core_dir[] = "/tmp/skr-hygiene-core-XXXXXX";

/* Fills p with a pattern derived from seed, computed byte by byte (no other copy of it). */
static void
pattern(uint8_t *p, size_t n, uint8_t seed)
{
    for (size_t i = 0; i < n; i++) {
        p[i] = (uint8_t)((i * 131u + seed) ^ (i >> 3) ^ 0x5c);
    }
}

/* The child's heap buffer: a static keeps it reachable (and its pattern stored) until the core
 * is written; the child exits right after. */
static uint8_t *child_heap;

static int
child_abort(bool harden)
{
    struct rlimit rl = { RLIM_INFINITY, RLIM_INFINITY };
    struct skr_secret *s = NULL;

    child_heap = malloc(64);
    if (child_heap == NULL || chdir(core_dir) != 0 || setrlimit(RLIMIT_CORE, &rl) != 0 ||
        skr_secret_new(64, &s) != SKR_OK) {
        return 3;
    }
    pattern(s->ptr, 64, 0x11);
    pattern(child_heap, 64, 0x77);
    if (harden && skr_process_harden() != SKR_OK) {
        return 4;
    }
    (void)signal(SIGQUIT, SIG_DFL);
    (void)raise(SIGQUIT);
    return 5;
}

static int
child_abort_plain(void)
{
    return child_abort(false);
}

static int
child_abort_hardened(void)
{
    return child_abort(true);
}

/* The core file the last child left in core_dir ("core" or "core.PID"), read into *ret and
 * removed; false when there is none. */
static bool
take_core(uint8_t **ret, size_t *ret_len)
{
    DIR *d = opendir(core_dir);
    const struct dirent *e;
    bool found = false;

    assert_non_null(d);
    *ret = NULL;
    *ret_len = 0;
    while ((e = readdir(d)) != NULL) {
        char path[320];
        struct stat st;
        int fd;

        if (strncmp(e->d_name, "core", 4) != 0) {
            continue;
        }
        (void)snprintf(path, sizeof(path), "%s/%s", core_dir, e->d_name);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0 && !found && fstat(fd, &st) == 0 && st.st_size > 0) {
            *ret = malloc((size_t)st.st_size);
            assert_non_null(*ret);
            assert_int_equal(read(fd, *ret, (size_t)st.st_size), st.st_size);
            *ret_len = (size_t)st.st_size;
            found = true;
        }
        if (fd >= 0) {
            (void)close(fd);
        }
        (void)unlink(path);
    }
    (void)closedir(d);
    return found;
}

static void
test_core_dump(void **state)
{
    uint8_t secret_pat[64];
    uint8_t heap_pat[64];
    uint8_t *core = NULL;
    size_t core_len = 0;
    int fd;
    char buf[64] = "";
    ssize_t n;
    int rc;

    (void)state;
    fd = open("/proc/sys/kernel/core_pattern", O_RDONLY | O_CLOEXEC);
    n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
    if (fd >= 0) {
        (void)close(fd);
    }
    if (n <= 0 || strncmp(buf, "core", 4) != 0 || strchr(buf, '/') != NULL) {
        print_message("core_pattern is not 'core' (%s): core dumps not checked here\n",
                      n > 0 ? buf : "unreadable");
        skip();
    }
    assert_non_null(mkdtemp(core_dir));

    /* control: a dumpable process dumps; the secret's bytes are not in the core, the heap
     * buffer's are */
    rc = in_child(child_abort_plain);
    assert_int_equal(rc, 100 + SIGQUIT);
    if (!take_core(&core, &core_len)) {
        (void)rmdir(core_dir);
        print_message("no core file from a dumpable child (RLIMIT or container policy): core "
                      "dumps not checked here\n");
        skip();
    }
    pattern(heap_pat, sizeof(heap_pat), 0x77);
    pattern(secret_pat, sizeof(secret_pat), 0x11);
    assert_non_null(memmem(core, core_len, heap_pat, sizeof(heap_pat)));
    assert_null(memmem(core, core_len, secret_pat, sizeof(secret_pat)));
    free(core);

    /* hardened: no core at all */
    rc = in_child(child_abort_hardened);
    assert_int_equal(rc, 100 + SIGQUIT);
    assert_false(take_core(&core, &core_len));
    assert_int_equal(rmdir(core_dir), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_freed_secret_wiped),
        cmocka_unit_test(test_lock_failure_reported),
        cmocka_unit_test(test_nondumpable),
        cmocka_unit_test(test_core_dump),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
