/*
 * sandbox.c - what skrd gives up before it serves (STYLE.md C17; docs/security.md "Sandbox").
 *
 * skrd holds keys that exist nowhere else in the container group, so a bug that gives an
 * attacker code execution inside it must not also give them a shell, the other processes of
 * the group, or new kernel attack surface. Before any thread starts, skrd_sandbox_apply():
 *
 *   1. sets no-new-privs (PR_SET_NO_NEW_PRIVS): nothing it could execute gains privileges
 *      through set-user-id bits or file capabilities; a seccomp filter requires it anyway;
 *   2. installs a seccomp allow-list, inherited by every thread started later (the HTTP
 *      listeners' threads, the client loader, the transfer-key pool). A system call outside the
 *      list fails with EPERM instead of killing the process: skrd cannot be tested here on the
 *      real SEV-SNP backends, and a library call we did not foresee must fail as an error the
 *      code already handles, not as a crash of the only process that holds the keys. What the
 *      list leaves out is what an intruder wants: execve/execveat, fork (clone without
 *      CLONE_THREAD; clone3 answers ENOSYS so that glibc falls back to clone, whose flags a
 *      filter can read), ptrace and process_vm_readv/writev, signals to other processes,
 *      sockets other than Unix, IPv4, IPv6 and netlink (glibc's getaddrinfo reads the
 *      interface addresses over NETLINK_ROUTE), ioctls other than the SEV guest device's
 *      ('S' type) and a few terminal/socket queries, and everything about mounts, namespaces,
 *      modules, BPF, keyrings, io_uring, perf, user faults and personality.
 *
 * Every supported SNP backend stays usable: /dev/sev-guest and /dev/sev are ioctls of type 'S'
 * on a file opened with openat; configfs-tsm is mkdir/openat/read/write/rmdir in its directory;
 * emulated:DIR reads files.
 *
 * Sanitizer builds (ASan/LSan) keep ptrace, wait4, every prctl option and non-thread clone:
 * at exit LeakSanitizer makes the process dumpable for a moment and stops the world from a
 * tracer task. Nothing else differs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include "err.h"
#include "skrd.h"

#if defined(__SANITIZE_ADDRESS__)
#define SANDBOX_SANITIZER 1
#else
#define SANDBOX_SANITIZER 0
#endif

/* System calls skrd, glibc, OpenSSL, libcurl, libmicrohttpd and jansson make while serving
 * (strace of the e2e tests), plus the variants glibc may pick instead on another kernel. */
/* clang-format off */
static const char *const allowed[] = {
    /* memory */
    "brk", "mmap", "munmap", "mremap", "mprotect", "madvise", "mlock", "munlock", "mlock2",
    /* threads, time, signals, limits */
    "futex", "set_robust_list", "get_robust_list", "rseq", "set_tid_address", "gettid", "getpid", "getppid",
    "exit", "exit_group", "sched_yield", "sched_getaffinity", "nanosleep", "clock_nanosleep",
    "clock_gettime", "clock_getres", "gettimeofday", "time", "rt_sigaction", "rt_sigprocmask",
    "rt_sigreturn", "rt_sigtimedwait", "sigaltstack", "restart_syscall", "getrandom", "sysinfo",
    "prlimit64", "getrlimit", "uname", "getuid", "geteuid", "getgid", "getegid",
    /* files: the security context, the CA file, the log, the SNP device, configfs-tsm, the
     * Unix socket (created, then restricted to mode 0600) */
    "openat", "open", "close", "read", "pread64", "readv", "write", "pwrite64", "writev", "lseek",
    "fstat", "newfstatat", "stat", "lstat", "statx", "access", "faccessat", "faccessat2",
    "readlink", "readlinkat", "getdents", "getdents64", "fcntl", "dup", "dup2", "dup3", "pipe2", "fsync",
    "fdatasync", "mkdir", "mkdirat", "rmdir", "unlinkat", "unlink", "getcwd", "fadvise64",
    "chmod", "fchmod", "fchmodat", "umask",
    /* network: the listeners and the HTTPS clients */
    "socketpair", "bind", "listen", "accept", "accept4", "connect", "getsockname", "getpeername",
    "setsockopt", "getsockopt", "sendto", "sendmsg", "sendmmsg", "recvfrom", "recvmsg",
    "recvmmsg", "shutdown", "poll", "ppoll", "select", "pselect6", "epoll_create1",
    "epoll_ctl", "epoll_wait", "epoll_pwait", "epoll_pwait2", "eventfd2",
};
/* clang-format on */

static const int socket_families[] = { AF_UNIX, AF_INET, AF_INET6, AF_NETLINK };

/* ioctls besides the SEV guest device's: the ones libc and libcurl use on sockets and
 * terminals (isatty, non-blocking mode, bytes pending). */
static const unsigned long other_ioctls[] = { TCGETS, TIOCGWINSZ, FIONBIO, FIONREAD };

static skr_err
allow(scmp_filter_ctx f, int nr, unsigned int n, const struct scmp_arg_cmp *cmp)
{
    int rc = n == 0 ? seccomp_rule_add(f, SCMP_ACT_ALLOW, nr, 0)
                    : seccomp_rule_add_array(f, SCMP_ACT_ALLOW, nr, n, cmp);

    if (rc != 0) {
        FAILF(SKR_E_INTERNAL, "seccomp_rule_add(%d) failed: %s", nr, strerror(-rc));
    }
    return SKR_OK;
}

static skr_err
add_rules(scmp_filter_ctx f)
{
    pid_t self = getpid();

    for (size_t i = 0; i < SKR_ARRAY_LEN(allowed); i++) {
        int nr = seccomp_syscall_resolve_name(allowed[i]);

        if (nr == __NR_SCMP_ERROR) {
            continue; /* not on this architecture (e.g. open, stat on arm64) */
        }
        TRY(allow(f, nr, 0, NULL));
    }
    for (size_t i = 0; i < SKR_ARRAY_LEN(socket_families); i++) {
        struct scmp_arg_cmp c = SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)socket_families[i]);

        TRY(allow(f, SCMP_SYS(socket), 1, &c));
    }
    {
        /* the SEV guest devices' requests are all of ioctl type 'S' */
        struct scmp_arg_cmp c = SCMP_A1(SCMP_CMP_MASKED_EQ, 0xff00u, (scmp_datum_t)'S' << 8);

        TRY(allow(f, SCMP_SYS(ioctl), 1, &c));
    }
    for (size_t i = 0; i < SKR_ARRAY_LEN(other_ioctls); i++) {
        struct scmp_arg_cmp c = SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t)other_ioctls[i]);

        TRY(allow(f, SCMP_SYS(ioctl), 1, &c));
    }
    {
        /* signals only to this process's own threads (abort, pthread_kill) */
        struct scmp_arg_cmp c = SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)self);

        TRY(allow(f, SCMP_SYS(tgkill), 1, &c));
        TRY(allow(f, SCMP_SYS(kill), 1, &c));
    }
    {
        /* the process may not be made dumpable again, nor renamed into something else; the
         * options glibc, libcurl and libmicrohttpd use stay allowed */
        static const int options[] = { PR_SET_NAME, PR_GET_NAME, PR_GET_DUMPABLE };

        for (size_t i = 0; i < SKR_ARRAY_LEN(options); i++) {
            struct scmp_arg_cmp c = SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)options[i]);

            TRY(allow(f, SCMP_SYS(prctl), 1, &c));
        }
    }
    {
        /* threads, never processes */
        struct scmp_arg_cmp c = SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD);

        TRY(allow(f, SCMP_SYS(clone), SANDBOX_SANITIZER ? 0 : 1, &c));
    }
    /* clone3 passes its flags in memory a filter cannot read: ENOSYS makes glibc use clone */
    ENSURE(seccomp_rule_add(f, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0) == 0, SKR_E_INTERNAL,
           "seccomp_rule_add(clone3) failed");
    if (SANDBOX_SANITIZER) {
        TRY(allow(f, SCMP_SYS(ptrace), 0, NULL));
        TRY(allow(f, SCMP_SYS(wait4), 0, NULL));
        TRY(allow(f, SCMP_SYS(prctl), 0, NULL));
    }
    return SKR_OK;
}

skr_err
skrd_sandbox_apply(void)
{
    scmp_filter_ctx f;
    skr_err e;
    int rc = 0;

    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        FAILF(SKR_E_INTERNAL, "prctl(PR_SET_NO_NEW_PRIVS) failed: %s", strerror(errno));
    }
    f = seccomp_init(SCMP_ACT_ERRNO(EPERM));
    ENSURE(f != NULL, SKR_E_NOMEM, "seccomp_init failed");
    e = add_rules(f);
    if (e == SKR_OK) {
        rc = seccomp_load(f);
    }
    seccomp_release(f);
    TRY(e);
    if (rc != 0) {
        FAILF(SKR_E_INTERNAL, "seccomp_load failed: %s", strerror(-rc));
    }
    return SKR_OK;
}
