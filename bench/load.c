/*
 * load.c - load generator and hostile clients for skrd (issue #6, "Load and hostile clients").
 *
 * scripts/load starts skr-emu and skrd and calls this program; tests/cli/test_hostile.sh runs
 * the hostile kinds briefly. Loopback HTTP/1.1 over plain sockets (no library in the way, so
 * that every byte a hostile client sends is the one we chose).
 *
 *   bench_load rate PORT METHOD PATH [--body-file F] [--clients N] [--seconds S] [--pid PID]
 *                   [--expect-member NAME] [--tag TAG] [--samples K]
 *       N clients, each on one kept-alive connection, send the request back to back for S
 *       seconds. A request is ok when the answer is 200 (and, with --expect-member, its JSON
 *       body has that member); 503 (skrd's --max-releases admission limit) is counted apart
 *       and retried after 5 ms; anything else, or a broken connection, is an error. Prints
 *       one "tag=..." line: rate, p50/p99/max latency, and skrd's VmRSS and RssAnon (KiB)
 *       at the start, highest, middle and end (sampled every 100 ms), plus K evenly spaced
 *       samples. Response bodies (released keys) are wiped and never printed, except the
 *       first error body (which carries no key).
 *
 *   bench_load hostile PORT KIND[,KIND...|all] [--conns N] [--seconds S] [--pid PID]
 *                      [--settle S] [--quick]
 *       Runs each attack for S seconds while a well-behaved client calls GET /status on a
 *       fresh connection every 100 ms (10 s timeout) and must get 200 every time; its worst
 *       latency is reported. After each attack it waits up to --settle seconds (default 8:
 *       skrd trims malloc every 5 s) for skrd's open file descriptors to return to their
 *       count before the attack, then samples memory (--quick: stops waiting as soon as the
 *       descriptors are back, so memory is sampled before skrd's trim; for tests). Kinds:
 *         slowloris   N connections sending one header byte every 2 s, reopened when closed
 *         chunked     N connections with a chunked POST body that never ends (a chunk / 2 s)
 *         idle        N connections that send nothing
 *         flood       rounds of N concurrent connections, each one GET /status: every
 *                     answer is 200; connections closed without one (refused past the
 *                     connection limit) are counted apart
 *         noread      N connections that pipeline GET /status until the socket is full and
 *                     never read the answers
 *         bigbody     POST bodies over 64 KiB: announced (Content-Length 1 MiB and 70000)
 *                     and chunked (100 KiB) -> 413
 *         bigheader   one 40 KiB header -> 4xx or close, never a 2xx/5xx
 *         manyheaders 5000 headers -> 4xx or close
 *         deepjson    10000 '[' and 10000 '{"a":' -> 400
 *         hugeb64     runtime_data of 60000 base64 characters -> 200/400 (never 5xx)
 *         badutf8     invalid UTF-8 in JSON strings -> 400
 *       Exit status 1 when any attack got an unexpected answer, the well-behaved client
 *       failed, skrd died or its descriptors did not come back; memory is reported only.
 *
 * Needs an fd limit above N (it raises its own soft RLIMIT_NOFILE to the hard limit).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define RESP_MAX (256u * 1024u)

static uint16_t port;
static int skrd_pid;

/* ---- small helpers -------------------------------------------------------------------- */

static void
die(const char *msg)
{
    fprintf(stderr, "bench_load: %s\n", msg);
    exit(2);
}

static long
num(const char *s, long lo, long hi, const char *what)
{
    char *end = NULL;
    double v = strtod(s, &end);

    if (end == s || *end != '\0' || v < (double)lo || v > (double)hi || v != (double)(long)v) {
        fprintf(stderr, "bench_load: %s must be an integer in %ld..%ld\n", what, lo, hi);
        exit(2);
    }
    return (long)v;
}

static void
sleep_ms(long ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int
connect_lo(void)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0) {
        return -1;
    }
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        (void)close(fd);
        return -1;
    }
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static int
send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* A buffer for one answer. */
struct resp {
    char *buf;
    size_t len;
    int status;
    size_t body_off;
    size_t body_len;
};

/* Content-Length of the header block in r (case-insensitive), or 0. */
static size_t
content_length(const char *hdr, size_t hlen)
{
    const char *p = hdr;
    const char *end = hdr + hlen;

    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));

        if (eol == NULL) {
            break;
        }
        if ((size_t)(eol - p) > 15 && strncasecmp(p, "content-length:", 15) == 0) {
            char tmp[32];
            size_t n = (size_t)(eol - p) - 15;

            if (n >= sizeof(tmp)) {
                n = sizeof(tmp) - 1;
            }
            memcpy(tmp, p + 15, n);
            tmp[n] = '\0';
            return (size_t)strtod(tmp, NULL);
        }
        p = eol + 1;
    }
    return 0;
}

/*
 * Reads one answer within timeout_ms. Returns the status (>= 100), 0 when the server closed
 * the connection without an answer, -1 on a connection error, -2 on timeout.
 */
static int
read_response(int fd, int timeout_ms, struct resp *r)
{
    double deadline = now() + timeout_ms / 1000.0;
    size_t need = 0;
    char *hend = NULL;

    r->len = 0;
    r->status = 0;
    for (;;) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        int left = (int)((deadline - now()) * 1000.0);
        ssize_t got;

        if (hend != NULL && r->len >= need) {
            break;
        }
        if (left <= 0) {
            return -2;
        }
        if (poll(&pfd, 1, left) <= 0) {
            continue;
        }
        if (r->len == RESP_MAX) {
            return -1;
        }
        got = recv(fd, r->buf + r->len, RESP_MAX - r->len, 0);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got < 0) {
            return r->len == 0 ? -1 : -1;
        }
        if (got == 0) {
            return r->len == 0 ? 0 : -1;
        }
        r->len += (size_t)got;
        if (hend == NULL) {
            hend = memmem(r->buf, r->len, "\r\n\r\n", 4);
            if (hend != NULL) {
                size_t hlen = (size_t)(hend - r->buf) + 4;

                if (r->len < 12 || strncmp(r->buf, "HTTP/1.", 7) != 0) {
                    return -1;
                }
                r->status = (r->buf[9] - '0') * 100 + (r->buf[10] - '0') * 10 + (r->buf[11] - '0');
                r->body_off = hlen;
                r->body_len = content_length(r->buf, hlen);
                need = hlen + r->body_len;
                if (need > RESP_MAX) {
                    return -1;
                }
            }
        }
    }
    return r->status;
}

static void
resp_wipe(struct resp *r)
{
    explicit_bzero(r->buf, r->len);
    r->len = 0;
}

/* ---- /proc --------------------------------------------------------------------------- */

struct mem {
    long rss;
    long anon;
};

static struct mem
mem_of(int pid)
{
    struct mem m = { -1, -1 };
    char path[64];
    char line[256];
    FILE *f = NULL;

    if (pid <= 0) {
        return m;
    }
    (void)snprintf(path, sizeof(path), "/proc/%d/status", pid);
    f = fopen(path, "re");
    if (f == NULL) {
        return m;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            m.rss = (long)strtod(line + 6, NULL);
        } else if (strncmp(line, "RssAnon:", 8) == 0) {
            m.anon = (long)strtod(line + 8, NULL);
        }
    }
    (void)fclose(f);
    return m;
}

/* Open descriptors of pid, -1 when /proc/PID/fd is not readable (another user). */
static long
fds_of(int pid)
{
    char path[64];
    DIR *d = NULL;
    struct dirent *e = NULL;
    long n = 0;

    if (pid <= 0) {
        return -1;
    }
    (void)snprintf(path, sizeof(path), "/proc/%d/fd", pid);
    d = opendir(path);
    if (d == NULL) {
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.') {
            n++;
        }
    }
    (void)closedir(d);
    return n;
}

static long
threads_of(int pid)
{
    char path[64];
    char line[256];
    FILE *f = NULL;
    long n = -1;

    if (pid <= 0) {
        return -1;
    }
    (void)snprintf(path, sizeof(path), "/proc/%d/status", pid);
    f = fopen(path, "re");
    if (f == NULL) {
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "Threads:", 8) == 0) {
            n = (long)strtod(line + 8, NULL);
        }
    }
    (void)fclose(f);
    return n;
}

static bool
alive(int pid)
{
    char path[64];
    char buf[512];
    FILE *f = NULL;
    char *p = NULL;
    bool ok = false;

    if (pid <= 0) {
        return true;
    }
    (void)snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    f = fopen(path, "re");
    if (f == NULL) {
        return false;
    }
    if (fgets(buf, sizeof(buf), f) != NULL && (p = strrchr(buf, ')')) != NULL) {
        ok = p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
    }
    (void)fclose(f);
    return ok;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double
pct(const double *v, size_t n, double p)
{
    size_t i;

    if (n == 0) {
        return 0;
    }
    i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i];
}

/* ---- rate ---------------------------------------------------------------------------- */

struct rate_cfg {
    const char *method;
    const char *path;
    char *body;
    size_t body_len;
    const char *member;
    volatile bool stop;
    pthread_mutex_t lock;
    bool printed_error;
};

struct rate_client {
    struct rate_cfg *cfg;
    pthread_t th;
    double *lat;
    size_t n_lat;
    size_t cap_lat;
    long ok;
    long busy;
    long errors;
};

static void
record(struct rate_client *c, double ms)
{
    if (c->n_lat == c->cap_lat) {
        size_t cap = c->cap_lat != 0 ? 2 * c->cap_lat : 4096;
        double *p = realloc(c->lat, cap * sizeof(*p));

        if (p == NULL) {
            return;
        }
        c->lat = p;
        c->cap_lat = cap;
    }
    c->lat[c->n_lat++] = ms;
}

static void
report_error(struct rate_cfg *cfg, int rc, const struct resp *r)
{
    pthread_mutex_lock(&cfg->lock);
    if (!cfg->printed_error) {
        cfg->printed_error = true;
        if (rc >= 100) {
            fprintf(stderr, "bench_load: first error: HTTP %d: %.*s\n", rc,
                    (int)(r->body_len < 400 ? r->body_len : 400), r->buf + r->body_off);
        } else {
            fprintf(stderr, "bench_load: first error: %s\n",
                    rc == 0    ? "connection closed"
                    : rc == -2 ? "timeout"
                               : "connection error");
        }
    }
    pthread_mutex_unlock(&cfg->lock);
}

static void *
rate_main(void *arg)
{
    struct rate_client *c = arg;
    struct rate_cfg *cfg = c->cfg;
    struct resp r = { .buf = malloc(RESP_MAX) };
    char head[512];
    int hlen = 0;
    int fd = -1;

    if (r.buf == NULL) {
        return NULL;
    }
    hlen = snprintf(head, sizeof(head),
                    "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    "Content-Length: %zu\r\n\r\n",
                    cfg->method, cfg->path, cfg->body_len);
    if (hlen <= 0 || (size_t)hlen >= sizeof(head)) {
        free(r.buf);
        return NULL;
    }
    while (!cfg->stop) {
        double t0;
        int rc;

        if (fd < 0 && (fd = connect_lo()) < 0) {
            c->errors++;
            sleep_ms(10);
            continue;
        }
        t0 = now();
        if (send_all(fd, head, (size_t)hlen) != 0 ||
            (cfg->body_len != 0 && send_all(fd, cfg->body, cfg->body_len) != 0)) {
            rc = -1;
        } else {
            rc = read_response(fd, 60000, &r);
        }
        if (rc == 200 && (cfg->member == NULL || memmem(r.buf + r.body_off, r.body_len, cfg->member,
                                                        strlen(cfg->member)) != NULL)) {
            c->ok++;
            record(c, (now() - t0) * 1000.0);
        } else if (rc == 503) {
            c->busy++;
            sleep_ms(5);
        } else {
            c->errors++;
            report_error(cfg, rc, &r);
        }
        if (rc < 100 || memmem(r.buf, r.body_off, "onnection: close", 16) != NULL) {
            (void)close(fd);
            fd = -1;
        }
        resp_wipe(&r);
    }
    if (fd >= 0) {
        (void)close(fd);
    }
    free(r.buf);
    return NULL;
}

static char *
read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "re");
    char *buf = NULL;
    size_t n = 0;

    if (f == NULL) {
        die("cannot open the body file");
    }
    buf = malloc(1u << 20);
    if (buf == NULL) {
        die("out of memory");
    }
    n = fread(buf, 1, (1u << 20) - 1, f);
    (void)fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

static int
cmd_rate(int argc, char **argv)
{
    struct rate_cfg cfg = { .method = argv[3], .path = argv[4] };
    long clients = 1;
    long secs = 10;
    long samples = 10;
    const char *tag = "rate";
    struct rate_client *cs = NULL;
    struct mem m0, mmax, mmid = { -1, -1 }, mend;
    long fds0;
    long *srss = NULL;
    long *sanon = NULL;
    long ns = 0;
    double t0, t_end, next_sample;
    long ok = 0, busy = 0, errors = 0;
    double *all = NULL;
    size_t n_all = 0;

    if (argc < 5) {
        die("usage: bench_load rate PORT METHOD PATH [options]");
    }
    pthread_mutex_init(&cfg.lock, NULL);
    for (int i = 5; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (v == NULL) {
            die("option without a value");
        }
        if (strcmp(argv[i], "--body-file") == 0) {
            cfg.body = read_file(v, &cfg.body_len);
        } else if (strcmp(argv[i], "--clients") == 0) {
            clients = num(v, 1, 1024, "--clients");
        } else if (strcmp(argv[i], "--seconds") == 0) {
            secs = num(v, 1, 86400, "--seconds");
        } else if (strcmp(argv[i], "--pid") == 0) {
            skrd_pid = (int)num(v, 1, 1L << 30, "--pid");
        } else if (strcmp(argv[i], "--expect-member") == 0) {
            cfg.member = v;
        } else if (strcmp(argv[i], "--tag") == 0) {
            tag = v;
        } else if (strcmp(argv[i], "--samples") == 0) {
            samples = num(v, 1, 1000, "--samples");
        } else {
            die("unknown option");
        }
        i++;
    }
    cs = calloc((size_t)clients, sizeof(*cs));
    srss = calloc((size_t)samples + 1, sizeof(*srss));
    sanon = calloc((size_t)samples + 1, sizeof(*sanon));
    if (cs == NULL || srss == NULL || sanon == NULL) {
        die("out of memory");
    }
    m0 = mem_of(skrd_pid);
    mmax = m0;
    fds0 = fds_of(skrd_pid);
    t0 = now();
    t_end = t0 + (double)secs;
    next_sample = t0 + (double)secs / (double)samples;
    for (long i = 0; i < clients; i++) {
        cs[i].cfg = &cfg;
        if (pthread_create(&cs[i].th, NULL, rate_main, &cs[i]) != 0) {
            die("cannot start a client thread");
        }
    }
    while (now() < t_end) {
        struct mem m;

        sleep_ms(100);
        m = mem_of(skrd_pid);
        if (m.rss > mmax.rss) {
            mmax.rss = m.rss;
        }
        if (m.anon > mmax.anon) {
            mmax.anon = m.anon;
        }
        if (mmid.rss < 0 && now() >= t0 + (double)secs / 2) {
            mmid = m;
        }
        if (now() >= next_sample && ns < samples) {
            srss[ns] = m.rss;
            sanon[ns] = m.anon;
            ns++;
            next_sample += (double)secs / (double)samples;
        }
    }
    mend = mem_of(skrd_pid);
    cfg.stop = true;
    for (long i = 0; i < clients; i++) {
        pthread_join(cs[i].th, NULL);
        ok += cs[i].ok;
        busy += cs[i].busy;
        errors += cs[i].errors;
        n_all += cs[i].n_lat;
    }
    t_end = now();
    all = malloc((n_all + 1) * sizeof(*all));
    if (all == NULL) {
        die("out of memory");
    }
    n_all = 0;
    for (long i = 0; i < clients; i++) {
        memcpy(all + n_all, cs[i].lat, cs[i].n_lat * sizeof(*all));
        n_all += cs[i].n_lat;
        free(cs[i].lat);
    }
    qsort(all, n_all, sizeof(*all), cmp_double);
    printf("tag=%s route=%s%s clients=%ld seconds=%ld requests=%ld ok=%ld busy503=%ld errors=%ld "
           "rps=%.1f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f rss_start_kib=%ld rss_max_kib=%ld "
           "rss_mid_kib=%ld rss_end_kib=%ld anon_start_kib=%ld anon_max_kib=%ld "
           "anon_mid_kib=%ld anon_end_kib=%ld fds_start=%ld fds_end=%ld alive=%s\n",
           tag, cfg.method[0] == 'G' ? "GET " : "POST ", cfg.path, clients, secs,
           ok + busy + errors, ok, busy, errors, (double)ok / (t_end - t0), pct(all, n_all, 0.5),
           pct(all, n_all, 0.99), n_all != 0 ? all[n_all - 1] : 0.0, m0.rss, mmax.rss, mmid.rss,
           mend.rss, m0.anon, mmax.anon, mmid.anon, mend.anon, fds0, fds_of(skrd_pid),
           alive(skrd_pid) ? "yes" : "NO");
    printf("  %s VmRSS/RssAnon KiB every %.0f s:", tag, (double)secs / (double)samples);
    for (long i = 0; i < ns; i++) {
        printf(" %ld/%ld", srss[i], sanon[i]);
    }
    printf("\n");
    fflush(stdout);
    if (cfg.body != NULL) {
        explicit_bzero(cfg.body, cfg.body_len);
    }
    free(cfg.body);
    free(all);
    free(cs);
    free(srss);
    free(sanon);
    return errors == 0 && alive(skrd_pid) ? 0 : 1;
}

/* ---- hostile ------------------------------------------------------------------------- */

struct probe {
    pthread_t th;
    volatile bool stop;
    long ok;
    long fail;
    double max_ms;
    int last_fail;
    long fds_peak; /* skrd's, sampled after each probe */
    long thr_peak;
    long anon_peak;
};

static void *
probe_main(void *arg)
{
    static const char req[] =
        "GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    struct probe *p = arg;
    struct resp r = { .buf = malloc(RESP_MAX) };

    if (r.buf == NULL) {
        return NULL;
    }
    while (!p->stop) {
        double t0 = now();
        int fd = connect_lo();
        int rc = -1;
        double ms;

        if (fd >= 0) {
            rc = send_all(fd, req, sizeof(req) - 1) == 0 ? read_response(fd, 10000, &r) : -1;
            (void)close(fd);
        }
        ms = (now() - t0) * 1000.0;
        if (ms > p->max_ms) {
            p->max_ms = ms;
        }
        {
            long f = fds_of(skrd_pid);
            long th = threads_of(skrd_pid);

            p->fds_peak = f > p->fds_peak ? f : p->fds_peak;
            p->thr_peak = th > p->thr_peak ? th : p->thr_peak;
            struct mem m = mem_of(skrd_pid);

            p->anon_peak = m.anon > p->anon_peak ? m.anon : p->anon_peak;
        }
        if (rc == 200) {
            p->ok++;
        } else {
            p->fail++;
            p->last_fail = rc;
        }
        sleep_ms(100);
    }
    free(r.buf);
    return NULL;
}

/* What one attack saw. */
struct tally {
    long sent;       /* requests or connections */
    long expected;   /* answers as expected */
    long closed;     /* closed by the server without an answer (where that is acceptable) */
    long unexpected; /* anything else */
    long reopened;   /* held connections the server closed (slowloris, idle, chunked) */
    int first_bad;
};

static void
bad(struct tally *t, int rc)
{
    if (t->unexpected++ == 0) {
        t->first_bad = rc;
    }
}

/* ---- held connections: slowloris, chunked, idle, noread ---- */

enum hold_kind { HOLD_SLOW, HOLD_CHUNKED, HOLD_IDLE, HOLD_NOREAD };

static const char slow_head[] = "GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
static const char chunk_head[] =
    "POST /key/release HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    "Transfer-Encoding: chunked\r\n\r\n";
static const char pipelined[] = "GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

static int
hold_open(enum hold_kind k)
{
    int fd = connect_lo();

    if (fd < 0) {
        return -1;
    }
    if (k == HOLD_SLOW) {
        (void)send_all(fd, slow_head, sizeof(slow_head) - 1);
    } else if (k == HOLD_CHUNKED) {
        (void)send_all(fd, chunk_head, sizeof(chunk_head) - 1);
    } else if (k == HOLD_NOREAD) {
        /* Fill the socket: pipelined requests until the kernel refuses more (up to 4 MiB). */
        char buf[64 * (sizeof(pipelined) - 1)];
        size_t total = 0;

        for (size_t i = 0; i < 64; i++) {
            memcpy(buf + i * (sizeof(pipelined) - 1), pipelined, sizeof(pipelined) - 1);
        }
        (void)fcntl(fd, F_SETFL, O_NONBLOCK);
        while (total < (4u << 20)) {
            ssize_t w = send(fd, buf, sizeof(buf), MSG_NOSIGNAL);

            if (w <= 0) {
                break;
            }
            total += (size_t)w;
        }
    }
    return fd;
}

/* True when the server closed fd (or reset it). */
static bool
hold_closed(int fd, enum hold_kind k)
{
    char buf[4096];
    struct pollfd pfd = { .fd = fd, .events = POLLIN };

    if (k == HOLD_NOREAD) {
        /* We never read; a closed connection shows as POLLHUP/POLLERR or a failing send. */
        pfd.events = 0;
        return poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLHUP | POLLERR)) != 0;
    }
    if (poll(&pfd, 1, 0) <= 0) {
        return false;
    }
    if ((pfd.revents & (POLLHUP | POLLERR)) != 0) {
        return true;
    }
    return recv(fd, buf, sizeof(buf), MSG_DONTWAIT) <= 0;
}

static void
attack_hold(enum hold_kind k, long conns, long secs, struct tally *t)
{
    int *fds = calloc((size_t)conns, sizeof(*fds));
    double t_end = now() + (double)secs;

    if (fds == NULL) {
        die("out of memory");
    }
    for (long i = 0; i < conns; i++) {
        fds[i] = hold_open(k);
        t->sent++;
    }
    while (now() < t_end) {
        sleep_ms(k == HOLD_NOREAD || k == HOLD_IDLE ? 500 : 2000);
        for (long i = 0; i < conns; i++) {
            bool closed = fds[i] < 0 || hold_closed(fds[i], k);

            if (!closed && k == HOLD_SLOW) {
                closed = send_all(fds[i], "a", 1) != 0;
            } else if (!closed && k == HOLD_CHUNKED) {
                closed = send_all(fds[i], "1\r\n[\r\n", 6) != 0;
            }
            if (closed) {
                if (fds[i] >= 0) {
                    (void)close(fds[i]);
                }
                t->reopened++;
                fds[i] = hold_open(k);
                t->sent++;
            }
        }
    }
    for (long i = 0; i < conns; i++) {
        if (fds[i] >= 0) {
            (void)close(fds[i]);
        }
    }
    t->expected = t->sent;
    free(fds);
}

/* ---- flood: N concurrent connections, one request each ---- */

static void
attack_flood(long conns, long secs, struct tally *t)
{
    static const char req[] =
        "GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    double t_end = now() + (double)secs;
    struct pollfd *pfds = calloc((size_t)conns, sizeof(*pfds));
    char *seen = calloc((size_t)conns, 16);
    char buf[4096];

    if (pfds == NULL || seen == NULL) {
        die("out of memory");
    }
    do {
        long open_n = 0;
        double deadline;

        for (long i = 0; i < conns; i++) {
            pfds[i].fd = connect_lo();
            pfds[i].events = POLLIN;
            memset(seen + i * 16, 0, 16);
            t->sent++;
            if (pfds[i].fd < 0 || send_all(pfds[i].fd, req, sizeof(req) - 1) != 0) {
                bad(t, -1);
                if (pfds[i].fd >= 0) {
                    (void)close(pfds[i].fd);
                }
                pfds[i].fd = -1;
                continue;
            }
            open_n++;
        }
        deadline = now() + 60.0;
        while (open_n > 0 && now() < deadline) {
            if (poll(pfds, (nfds_t)conns, 1000) <= 0) {
                continue;
            }
            for (long i = 0; i < conns; i++) {
                ssize_t got;
                char *s = seen + i * 16;

                if (pfds[i].fd < 0 || pfds[i].revents == 0) {
                    continue;
                }
                got = recv(pfds[i].fd, buf, sizeof(buf), MSG_DONTWAIT);
                if (got > 0) {
                    /* keep the first 12 bytes: "HTTP/1.1 200" */
                    size_t have = strnlen(s, 15);
                    size_t take = (size_t)got < 15 - have ? (size_t)got : 15 - have;

                    memcpy(s + have, buf, take);
                    continue;
                }
                if (got < 0 && errno == EAGAIN) {
                    continue;
                }
                if (strncmp(s, "HTTP/1.1 200", 12) == 0) {
                    t->expected++;
                } else if (s[0] == '\0') {
                    t->closed++; /* refused at the connection limit (or evicted): no answer */
                } else {
                    bad(t, got < 0 ? -1 : 0);
                }
                (void)close(pfds[i].fd);
                pfds[i].fd = -1;
                open_n--;
            }
        }
        for (long i = 0; i < conns; i++) {
            if (pfds[i].fd >= 0) {
                bad(t, -2);
                (void)close(pfds[i].fd);
                pfds[i].fd = -1;
            }
        }
    } while (now() < t_end);
    free(pfds);
    free(seen);
}

/* ---- bad requests: one connection each, the answer checked ---- */

enum expect { EXPECT_413, EXPECT_400, EXPECT_4XX_OR_CLOSE, EXPECT_NOT_5XX };

struct bad_req {
    char *data;
    size_t len;
    size_t early; /* send this many bytes, read the answer, then (maybe) the rest */
    enum expect expect;
};

static char *
repeat(const char *prefix, const char *unit, size_t times, const char *suffix, size_t *len)
{
    size_t pl = strlen(prefix), ul = strlen(unit), sl = strlen(suffix);
    char *s = malloc(pl + ul * times + sl + 1);

    if (s == NULL) {
        die("out of memory");
    }
    memcpy(s, prefix, pl);
    for (size_t i = 0; i < times; i++) {
        memcpy(s + pl + i * ul, unit, ul);
    }
    memcpy(s + pl + ul * times, suffix, sl + 1);
    *len = pl + ul * times + sl;
    return s;
}

/* A POST of body to path (Content-Length set). */
static struct bad_req
post(const char *path, const char *body, size_t blen, enum expect ex)
{
    struct bad_req b = { .expect = ex };
    char head[256];
    int h = snprintf(head, sizeof(head),
                     "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     "Connection: close\r\nContent-Length: %zu\r\n\r\n",
                     path, blen);

    if (h <= 0 || (size_t)h >= sizeof(head)) {
        die("request head too long");
    }
    b.data = malloc((size_t)h + blen);
    if (b.data == NULL) {
        die("out of memory");
    }
    memcpy(b.data, head, (size_t)h);
    memcpy(b.data + h, body, blen);
    b.len = (size_t)h + blen;
    return b;
}

static size_t
make_bad(const char *kind, struct bad_req *out)
{
    size_t n = 0;
    size_t len = 0;
    char *s = NULL;

    if (strcmp(kind, "bigbody") == 0) {
        /* announced over the limit: answered before any body byte */
        s = repeat("", "x", 70000, "", &len);
        out[n] = post("/key/release", s, len, EXPECT_413);
        out[n].early = out[n].len - len;
        n++;
        out[n] = post("/attest/raw", s, len, EXPECT_413);
        n++;
        free(s);
        s = repeat("POST /key/release HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                   "application/json\r\nConnection: close\r\nContent-Length: 1048576\r\n\r\n",
                   "", 0, "", &len);
        out[n] = (struct bad_req){ .data = s, .len = len, .early = len, .expect = EXPECT_413 };
        n++;
        /* chunked, 100 KiB in 1 KiB chunks: the limit is found while streaming */
        {
            char unit[1024 + 16];
            int u = snprintf(unit, sizeof(unit), "400\r\n%01024d\r\n", 0);

            if (u <= 0) {
                die("snprintf");
            }
            s = repeat(
                "POST /attest/raw HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                "application/json\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n",
                unit, 100, "0\r\n\r\n", &len);
            out[n++] = (struct bad_req){ .data = s, .len = len, .expect = EXPECT_413 };
        }
    } else if (strcmp(kind, "bigheader") == 0) {
        s = repeat("GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ", "a", 40000,
                   "\r\nConnection: close\r\n\r\n", &len);
        out[n++] = (struct bad_req){ .data = s, .len = len, .expect = EXPECT_4XX_OR_CLOSE };
        s = repeat("GET /status?", "a=b&", 10000, " HTTP/1.1\r\nHost: x\r\n\r\n", &len);
        out[n++] = (struct bad_req){ .data = s, .len = len, .expect = EXPECT_4XX_OR_CLOSE };
    } else if (strcmp(kind, "manyheaders") == 0) {
        s = repeat("GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n", "X-H: v\r\n", 5000,
                   "Connection: close\r\n\r\n", &len);
        out[n++] = (struct bad_req){ .data = s, .len = len, .expect = EXPECT_4XX_OR_CLOSE };
    } else if (strcmp(kind, "deepjson") == 0) {
        s = repeat("", "[", 10000, "", &len);
        out[n++] = post("/attest/raw", s, len, EXPECT_400);
        out[n++] = post("/key/release", s, len, EXPECT_400);
        free(s);
        s = repeat("", "{\"a\":", 10000, "", &len);
        out[n++] = post("/attest/maa", s, len, EXPECT_400);
        free(s);
        s = repeat("{\"runtime_data\":", "[", 5000, "", &len);
        out[n++] = post("/attest/raw", s, len, EXPECT_400);
        free(s);
    } else if (strcmp(kind, "hugeb64") == 0) {
        s = repeat("{\"runtime_data\":\"", "AAAA", 15000, "\"}", &len);
        out[n++] = post("/attest/raw", s, len, EXPECT_NOT_5XX);
        out[n++] = post("/attest/combined", s, len, EXPECT_NOT_5XX);
        out[n++] = post("/attest/maa", s, len, EXPECT_400);
        free(s);
        s = repeat("{\"maa_endpoint\":\"a\",\"akv_endpoint\":\"b\",\"kid\":\"", "QUJD", 15000,
                   "\"}", &len);
        out[n++] = post("/key/release", s, len, EXPECT_400);
        free(s);
        s = repeat("{\"runtime_data\":\"", "A", 60001, "\"}", &len);
        out[n++] = post("/attest/raw", s, len, EXPECT_400);
        free(s);
    } else if (strcmp(kind, "badutf8") == 0) {
        static const char *const bodies[] = {
            "{\"runtime_data\":\"\xff\xfe\xfd\"}",
            "{\"runtime_data\":\"\xc3\x28\"}",
            "{\"runtime_data\":\"\xed\xa0\x80\"}",
            "{\"maa_endpoint\":\"\xf8\x88\x80\x80\x80\",\"akv_endpoint\":\"a\",\"kid\":\"k\"}",
            "{\"\xc0\xaf\":1}",
        };
        static const char *const paths[] = { "/attest/raw", "/attest/combined", "/attest/maa",
                                             "/key/release", "/key/release" };

        for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
            out[n++] = post(paths[i], bodies[i], strlen(bodies[i]), EXPECT_400);
        }
    }
    return n;
}

static bool
as_expected(enum expect ex, int rc, struct tally *t)
{
    switch (ex) {
    case EXPECT_413:
        return rc == 413;
    case EXPECT_400:
        return rc == 400;
    case EXPECT_4XX_OR_CLOSE:
        if (rc == 0 || rc == -1) {
            t->closed++;
            return true;
        }
        return rc >= 400 && rc < 500;
    case EXPECT_NOT_5XX:
        return rc >= 200 && rc < 500;
    }
    return false;
}

struct bad_worker {
    pthread_t th;
    struct bad_req *reqs;
    size_t n;
    double t_end;
    struct tally t;
};

static void *
bad_main(void *arg)
{
    struct bad_worker *w = arg;
    struct resp r = { .buf = malloc(RESP_MAX) };
    size_t k = 0;

    if (r.buf == NULL) {
        return NULL;
    }
    do {
        const struct bad_req *b = &w->reqs[k++ % w->n];
        int fd = connect_lo();
        int rc = -1;

        w->t.sent++;
        if (fd >= 0) {
            size_t first = b->early != 0 ? b->early : b->len;

            if (send_all(fd, b->data, first) == 0) {
                rc = read_response(fd, 10000, &r);
            } else {
                /* the server may answer and close while we still send: read what it said */
                rc = read_response(fd, 10000, &r);
                if (rc <= 0) {
                    rc = -1;
                }
            }
            (void)close(fd);
        }
        if (!as_expected(b->expect, rc, &w->t)) {
            if (w->t.unexpected == 0 && rc >= 100) {
                fprintf(stderr, "bench_load: unexpected HTTP %d: %.*s\n", rc,
                        (int)(r.body_len < 300 ? r.body_len : 300), r.buf + r.body_off);
            }
            bad(&w->t, rc);
        } else {
            w->t.expected++;
        }
    } while (now() < w->t_end);
    free(r.buf);
    return NULL;
}

static void
attack_bad(const char *kind, long secs, struct tally *t)
{
    struct bad_req reqs[16];
    struct bad_worker w[2];
    size_t n = make_bad(kind, reqs);
    double t_end = now() + (double)secs;

    for (size_t i = 0; i < 2; i++) {
        w[i] = (struct bad_worker){ .reqs = reqs, .n = n, .t_end = t_end };
        if (pthread_create(&w[i].th, NULL, bad_main, &w[i]) != 0) {
            die("cannot start a worker thread");
        }
    }
    for (size_t i = 0; i < 2; i++) {
        pthread_join(w[i].th, NULL);
        t->sent += w[i].t.sent;
        t->expected += w[i].t.expected;
        t->closed += w[i].t.closed;
        if (w[i].t.unexpected != 0 && t->unexpected == 0) {
            t->first_bad = w[i].t.first_bad;
        }
        t->unexpected += w[i].t.unexpected;
    }
    for (size_t i = 0; i < n; i++) {
        free(reqs[i].data);
    }
}

static const char *const kinds[] = { "slowloris", "chunked", "idle",      "flood",
                                     "noread",    "bigbody", "bigheader", "manyheaders",
                                     "deepjson",  "hugeb64", "badutf8" };

static bool
run_kind(const char *kind, long conns, long secs, long settle, bool quick)
{
    struct tally t = { 0 };
    struct probe p = { 0 };
    struct mem base = mem_of(skrd_pid);
    struct mem after;
    long fds0 = fds_of(skrd_pid);
    long thr0 = threads_of(skrd_pid);
    long fds_peak = fds0;
    long thr_peak = thr0;
    long fds1;
    double t_settle;
    bool ok;
    bool mem_back;

    if (pthread_create(&p.th, NULL, probe_main, &p) != 0) {
        die("cannot start the probe thread");
    }
    if (strcmp(kind, "slowloris") == 0) {
        attack_hold(HOLD_SLOW, conns, secs, &t);
    } else if (strcmp(kind, "chunked") == 0) {
        attack_hold(HOLD_CHUNKED, conns, secs, &t);
    } else if (strcmp(kind, "idle") == 0) {
        attack_hold(HOLD_IDLE, conns, secs, &t);
    } else if (strcmp(kind, "noread") == 0) {
        attack_hold(HOLD_NOREAD, conns, secs, &t);
    } else if (strcmp(kind, "flood") == 0) {
        attack_flood(conns, secs, &t);
    } else {
        attack_bad(kind, secs, &t);
    }
    /* the peak as the attack ends (held connections are still open until just now) */
    {
        long f = fds_of(skrd_pid);
        long th = threads_of(skrd_pid);

        fds_peak = f > fds_peak ? f : fds_peak;
        thr_peak = th > thr_peak ? th : thr_peak;
    }
    p.stop = true;
    pthread_join(p.th, NULL);
    fds_peak = p.fds_peak > fds_peak ? p.fds_peak : fds_peak;
    thr_peak = p.thr_peak > thr_peak ? p.thr_peak : thr_peak;
    t_settle = now() + (double)settle;
    do {
        sleep_ms(250);
        fds1 = fds_of(skrd_pid);
    } while (now() < t_settle && fds1 > fds0);
    /* past skrd's 5 s malloc_trim (--quick: memory is not waited for) */
    if (!quick && now() < t_settle) {
        sleep_ms((long)((t_settle - now()) * 1000.0));
    }
    after = mem_of(skrd_pid);
    fds1 = fds_of(skrd_pid);
    mem_back = after.anon <= base.anon + 1024;
    ok = t.unexpected == 0 && p.fail == 0 && alive(skrd_pid) && (fds0 < 0 || fds1 <= fds0);
    printf("kind=%s sent=%ld expected=%ld closed_no_answer=%ld unexpected=%ld reopened=%ld "
           "probe_ok=%ld probe_fail=%ld probe_max_ms=%.1f alive=%s fds_base=%ld fds_peak=%ld "
           "fds_after=%ld threads_base=%ld threads_peak=%ld rss_base_kib=%ld rss_after_kib=%ld "
           "anon_base_kib=%ld anon_peak_kib=%ld anon_after_kib=%ld mem_back=%s verdict=%s\n",
           kind, t.sent, t.expected, t.closed, t.unexpected, t.reopened, p.ok, p.fail, p.max_ms,
           alive(skrd_pid) ? "yes" : "NO", fds0, fds_peak, fds1, thr0, thr_peak, base.rss,
           after.rss, base.anon, p.anon_peak, after.anon, mem_back ? "yes" : "no",
           ok ? "ok" : "FAIL");
    if (t.unexpected != 0) {
        printf("  %s: first unexpected answer: %d (0 closed, -1 error, -2 timeout)\n", kind,
               t.first_bad);
    }
    if (p.fail != 0) {
        printf("  %s: the well-behaved client failed %ld times (last: %d)\n", kind, p.fail,
               p.last_fail);
    }
    fflush(stdout);
    return ok;
}

static int
cmd_hostile(int argc, char **argv)
{
    long conns = 300;
    long secs = 10;
    long settle = 8;
    bool quick = false;
    char list[512];
    char *save = NULL;
    bool all_ok = true;

    if (argc < 4) {
        die("usage: bench_load hostile PORT KIND[,KIND...|all] [options]");
    }
    for (int i = 4; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(argv[i], "--quick") == 0) {
            quick = true;
            continue;
        }
        if (v == NULL) {
            die("option without a value");
        }
        if (strcmp(argv[i], "--conns") == 0) {
            conns = num(v, 1, 100000, "--conns");
        } else if (strcmp(argv[i], "--seconds") == 0) {
            secs = num(v, 1, 86400, "--seconds");
        } else if (strcmp(argv[i], "--pid") == 0) {
            skrd_pid = (int)num(v, 1, 1L << 30, "--pid");
        } else if (strcmp(argv[i], "--settle") == 0) {
            settle = num(v, 0, 600, "--settle");
        } else {
            die("unknown option");
        }
        i++;
    }
    if (strcmp(argv[3], "all") == 0) {
        size_t off = 0;

        for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
            int w = snprintf(list + off, sizeof(list) - off, "%s%s", i ? "," : "", kinds[i]);

            if (w < 0 || (size_t)w >= sizeof(list) - off) {
                die("kind list too long");
            }
            off += (size_t)w;
        }
    } else {
        if (strlen(argv[3]) >= sizeof(list)) {
            die("kind list too long");
        }
        memcpy(list, argv[3], strlen(argv[3]) + 1);
    }
    for (char *k = strtok_r(list, ",", &save); k != NULL; k = strtok_r(NULL, ",", &save)) {
        bool known = false;

        for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
            known = known || strcmp(k, kinds[i]) == 0;
        }
        if (!known) {
            fprintf(stderr, "bench_load: unknown kind '%s'\n", k);
            return 2;
        }
        if (!run_kind(k, conns, secs, settle, quick)) {
            all_ok = false;
        }
    }
    return all_ok ? 0 : 1;
}

int
main(int argc, char **argv)
{
    struct rlimit rl;

    (void)signal(SIGPIPE, SIG_IGN);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (argc < 3) {
        die("usage: bench_load rate PORT METHOD PATH [options] | hostile PORT KINDS [options]");
    }
    port = (uint16_t)num(argv[2], 1, 65535, "PORT");
    if (strcmp(argv[1], "rate") == 0) {
        return cmd_rate(argc, argv);
    }
    if (strcmp(argv[1], "hostile") == 0) {
        return cmd_hostile(argc, argv);
    }
    die("unknown command (rate, hostile)");
    return 2;
}
