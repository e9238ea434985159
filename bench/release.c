/*
 * release.c - load generator for skrd's POST /key/release (issue #4, "bench/release").
 *
 * scripts/bench starts skr-emu and skrd (once per configuration: key pool, no pool, reuse
 * window), then calls this program for each table row. Loopback HTTP only: every client thread
 * keeps one libcurl handle (one kept-alive connection to skrd) and posts the same request body
 * back to back. A row reports:
 *   releases, failures        a release counts when skrd answers 200 with a "key" member;
 *                             a 503 (skrd's --max-releases limit) is counted apart and the
 *                             client tries again after 20 ms; anything else is a failure
 *   p50, p99                  wall-clock latency per release, as the client sees it
 *   rel/s                     releases completed / wall time of the run
 *   cpu ms/rel                skrd's own CPU time (utime + stime of /proc/PID/stat, its
 *                             threads included) over the run / releases
 *   rss KiB                   skrd's VmRSS (/proc/PID/status), the highest sample (every
 *                             100 ms) during the run; the highest RssAnon (its private
 *                             memory, without shared library pages) is printed below the row
 * and each as a ratio to the crypto floor given on the command line (measured by the script
 * in the same run): latency in RSA-2048 private operations (1 / openssl speed sign/s) and in
 * RSA-2048 key generations, releases/s as a share of RSA-2048 sign/s.
 *
 * Released keys never leave this process: response bodies are checked for the "key" member
 * and wiped; only error bodies (which carry no key) are printed, the first one of a run.
 *
 * Usage:
 *   bench_release header
 *   bench_release run URL BODY [--clients N] [--seconds S | --count N] [--pid PID]
 *                 [--label TEXT] [--tag TAG] [--kv FILE] [--floor-sign R] [--floor-keygen-ms M]
 *                 [--rss-samples K] [--interval-ms MS] [--peer-pid PID [--peer-name N]]
 *   bench_release keygen N        RSA-2048 key generation time (EVP_RSA_gen), N keys
 *   bench_release rss PID         VmRSS of PID in KiB
 *   bench_release freeport        a loopback TCP port that was free a moment ago
 *
 * --interval-ms paces each client (a release starts at most every MS ms): an open-loop row
 * below the rate at which the pool makes keys measures the latency of a release that finds a
 * key ready; back-to-back rows measure the ceiling, where the pool is drained.
 *
 * --peer-pid adds the CPU time per release of another process (skr-emu: where the rest of a
 * release's cost goes when both share the machine).
 *
 * With --rss-samples K (the soak) it also prints skrd's VmRSS and RssAnon before the load and
 * at K evenly spaced points of the run, the growth from the middle to the end, and the growth
 * from the median of the run's third quarter to the median of its fourth (the soak's verdict:
 * skrd trims every 5 s, so a single sample can land on either side of a trim). --kv appends one
 * line "tag=TAG key=value..." that scripts/bench turns into the PASS/MISS summary.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "bench.h"

#define BENCH_MAX_CLIENTS  64
#define BENCH_MAX_SAMPLES  (4u << 20) /* per run: 4 Mi latencies, 32 MiB of doubles */
#define BENCH_MAX_BODY     (64u << 10)
#define BENCH_MAX_SECONDS  3600
#define BENCH_MAX_COUNT    1000000
#define BENCH_MAX_RSS_SAMP 100
#define BENCH_TIMEOUT_S    120L
#define BENCH_BUSY_PAUSE_S 0.02 /* after a 503 (skrd's --max-releases), before trying again */

struct opts {
    const char *url;
    const char *body;
    const char *label;
    const char *tag;
    const char *kv;
    long clients;
    double seconds; /* 0: run by count */
    long count;
    long pid;      /* 0: no process accounting */
    long peer_pid; /* another process whose CPU per release is reported (the emulator) */
    const char *peer_name;
    double floor_sign;
    double floor_keygen_ms;
    long rss_samples;
    double interval_ms; /* per client: releases start at most this often (0: back to back) */
};

struct shared {
    const struct opts *o;
    double until;
    pthread_mutex_t lock;
    long remaining; /* by count: releases still to start */
    long first_status;
    char first_error[320];
    bool have_error;
};

struct worker {
    struct shared *s;
    pthread_t thread;
    double *lat;
    size_t n;
    size_t cap;
    size_t failures;
    size_t busy;      /* 503 answers: skrd's concurrency limit, retried after a pause */
    double last_done; /* when this client's last release ended */
};

struct reply {
    unsigned char buf[BENCH_MAX_BODY];
    size_t len;
    bool overflow;
};

struct monitor {
    long pid;
    pthread_t thread;
    pthread_mutex_t lock;
    bool stop;
    double t0;
    double seconds;
    long samples; /* series points wanted (soak) */
    long next;    /* next series point */
    unsigned long max_kib;
    unsigned long max_anon_kib; /* RssAnon: the process's private memory, no library pages */
    unsigned long series[BENCH_MAX_RSS_SAMP + 1];
    unsigned long anon_series[BENCH_MAX_RSS_SAMP + 1]; /* RssAnon at the same points */
    long nseries;
};

static void
sleep_s(double s)
{
    struct timespec ts;

    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static bool
parse_long(const char *s, long min, long max, long *ret)
{
    long v = 0;

    if (s == NULL || *s == '\0') {
        return false;
    }
    for (const char *p = s; *p != '\0'; p++) {
        if (*p < '0' || *p > '9' || v > (max - (*p - '0')) / 10) {
            return false;
        }
        v = v * 10 + (*p - '0');
    }
    if (v < min) {
        return false;
    }
    *ret = v;
    return true;
}

static bool
parse_double(const char *s, double min, double max, double *ret)
{
    char *end = NULL;
    double v;

    if (s == NULL || *s == '\0') {
        return false;
    }
    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !(v >= min && v <= max)) {
        return false;
    }
    *ret = v;
    return true;
}

/* ---- /proc ------------------------------------------------------------------------------- */

static bool
read_small(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    size_t len = 0;

    if (fd < 0) {
        return false;
    }
    while (len + 1 < size) {
        ssize_t r = read(fd, buf + len, size - 1 - len);

        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            break;
        }
        len += (size_t)r;
    }
    (void)close(fd);
    buf[len] = '\0';
    return len > 0;
}

/* utime + stime of PID in clock ticks (fields 14 and 15 of /proc/PID/stat, counted after the
 * ")" that ends the command name, which may itself hold spaces and parentheses). */
static bool
proc_cpu_ticks(long pid, unsigned long long *ret)
{
    char path[64];
    char buf[1024];
    const char *p;
    unsigned long long v[2] = { 0, 0 };
    int field = 2; /* the field ")" ends */

    (void)snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    if (!read_small(path, buf, sizeof(buf)) || (p = strrchr(buf, ')')) == NULL) {
        return false;
    }
    p++;
    while (*p != '\0' && field < 15) {
        while (*p == ' ') {
            p++;
        }
        field++;
        if (field == 14 || field == 15) {
            unsigned long long x = 0;

            if (*p < '0' || *p > '9') {
                return false;
            }
            while (*p >= '0' && *p <= '9') {
                x = x * 10 + (unsigned long long)(*p - '0');
                p++;
            }
            v[field - 14] = x;
        } else {
            while (*p != '\0' && *p != ' ') {
                p++;
            }
        }
    }
    if (field != 15) {
        return false;
    }
    *ret = v[0] + v[1];
    return true;
}

/* A "Name:   N kB" line of /proc/PID/status. */
static bool
proc_status_kib(long pid, const char *name, unsigned long *ret)
{
    char path[64];
    char key[32];
    char buf[4096];
    const char *p;
    unsigned long v = 0;

    (void)snprintf(path, sizeof(path), "/proc/%ld/status", pid);
    (void)snprintf(key, sizeof(key), "\n%s:", name);
    if (!read_small(path, buf, sizeof(buf)) || (p = strstr(buf, key)) == NULL) {
        return false;
    }
    p += strlen(key);
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    if (*p < '0' || *p > '9') {
        return false;
    }
    while (*p >= '0' && *p <= '9') {
        v = v * 10 + (unsigned long)(*p - '0');
        p++;
    }
    *ret = v;
    return true;
}

static bool
proc_rss_kib(long pid, unsigned long *ret)
{
    return proc_status_kib(pid, "VmRSS", ret);
}

static void *
monitor_main(void *arg)
{
    struct monitor *m = arg;

    for (;;) {
        unsigned long kib = 0;
        double t = now() - m->t0;
        bool stop;

        (void)pthread_mutex_lock(&m->lock);
        stop = m->stop;
        (void)pthread_mutex_unlock(&m->lock);
        unsigned long anon = 0;

        if (proc_status_kib(m->pid, "RssAnon", &anon) && anon > m->max_anon_kib) {
            m->max_anon_kib = anon;
        }
        if (proc_rss_kib(m->pid, &kib)) {
            if (kib > m->max_kib) {
                m->max_kib = kib;
            }
            /* series point k at k/samples of the run (k = 1..samples-1; the last is taken
             * after the load stops, by the caller) */
            while (m->samples > 1 && m->next < m->samples &&
                   t >= m->seconds * (double)m->next / (double)m->samples) {
                m->anon_series[m->nseries] = anon;
                m->series[m->nseries++] = kib;
                m->next++;
            }
        }
        if (stop) {
            break;
        }
        sleep_s(0.1);
    }
    return NULL;
}

static int
cmp_ulong(const void *a, const void *b)
{
    unsigned long x = *(const unsigned long *)a;
    unsigned long y = *(const unsigned long *)b;

    return (x > y) - (x < y);
}

/*
 * The median of series points [from, to). skrd hands free pages back every 5 s, so one sample
 * can fall before or after a trim; the median of a quarter of the run does not.
 */
static unsigned long
median_kib(const unsigned long *series, long from, long to)
{
    unsigned long v[BENCH_MAX_RSS_SAMP + 1];
    size_t n = 0;

    for (long i = from; i < to && n < sizeof(v) / sizeof(v[0]); i++) {
        v[n++] = series[i];
    }
    qsort(v, n, sizeof(v[0]), cmp_ulong);
    return n > 0 ? v[n / 2] : 0;
}

/* ---- the clients ------------------------------------------------------------------------- */

static bool
contains(const unsigned char *p, size_t n, const char *needle)
{
    size_t k = strlen(needle);

    for (size_t i = 0; i + k <= n; i++) {
        if (memcmp(p + i, needle, k) == 0) {
            return true;
        }
    }
    return false;
}

static size_t
on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    struct reply *r = arg;
    size_t n = size * nmemb;

    if (n > sizeof(r->buf) - r->len) {
        r->overflow = true;
        return 0;
    }
    memcpy(r->buf + r->len, data, n);
    r->len += n;
    return n;
}

/* The first failure of a run, printable ASCII only (error bodies carry no key). */
static void
note_error(struct shared *s, long status, const struct reply *r, const char *curl_msg)
{
    (void)pthread_mutex_lock(&s->lock);
    if (!s->have_error) {
        size_t j = 0;

        s->have_error = true;
        s->first_status = status;
        if (curl_msg != NULL) {
            (void)snprintf(s->first_error, sizeof(s->first_error), "%s", curl_msg);
        } else {
            for (size_t i = 0; i < r->len && j + 1 < sizeof(s->first_error); i++) {
                unsigned char c = r->buf[i];

                s->first_error[j++] = (c >= 0x20 && c < 0x7f) ? (char)c : '.';
            }
            s->first_error[j] = '\0';
        }
    }
    (void)pthread_mutex_unlock(&s->lock);
}

static bool
take_one(struct shared *s)
{
    bool go;

    if (s->o->seconds > 0) {
        return now() < s->until;
    }
    (void)pthread_mutex_lock(&s->lock);
    go = s->remaining > 0;
    if (go) {
        s->remaining--;
    }
    (void)pthread_mutex_unlock(&s->lock);
    return go;
}

static bool
push_sample(struct worker *w, double v)
{
    if (w->n == w->cap) {
        size_t cap = w->cap == 0 ? 1024 : 2 * w->cap;
        double *p;

        if (cap > BENCH_MAX_SAMPLES) {
            return false;
        }
        p = realloc(w->lat, cap * sizeof(double));
        if (p == NULL) {
            return false;
        }
        w->lat = p;
        w->cap = cap;
    }
    w->lat[w->n++] = v;
    return true;
}

static void *
worker_main(void *arg)
{
    struct worker *w = arg;
    struct shared *s = w->s;
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    CURL *c = curl_easy_init();
    struct reply *r = malloc(sizeof(*r));

    if (c == NULL || hdr == NULL || r == NULL) {
        (void)fprintf(stderr, "bench_release: out of memory\n");
        exit(1);
    }
    (void)curl_easy_setopt(c, CURLOPT_URL, s->o->url);
    (void)curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http");
    (void)curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    (void)curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    (void)curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
    (void)curl_easy_setopt(c, CURLOPT_TIMEOUT, BENCH_TIMEOUT_S);
    (void)curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    (void)curl_easy_setopt(c, CURLOPT_POSTFIELDS, s->o->body);
    (void)curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(s->o->body));
    (void)curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    (void)curl_easy_setopt(c, CURLOPT_WRITEDATA, r);

    while (take_one(s)) {
        double t0;
        double t1;
        long status = 0;
        CURLcode rc;

        r->len = 0;
        r->overflow = false;
        t0 = now();
        rc = curl_easy_perform(c);
        t1 = now();
        (void)curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        w->last_done = t1;
        if (rc == CURLE_OK && status == 200 && !r->overflow && r->len > 0 &&
            contains(r->buf, r->len, "\"key\"")) {
            if (!push_sample(w, t1 - t0)) {
                OPENSSL_cleanse(r->buf, r->len);
                break;
            }
        } else if (rc == CURLE_OK && status == 503) {
            w->busy++;
            sleep_s(BENCH_BUSY_PAUSE_S);
        } else {
            w->failures++;
            note_error(s, status, r, rc != CURLE_OK ? curl_easy_strerror(rc) : NULL);
        }
        OPENSSL_cleanse(r->buf, r->len);
        if (s->o->interval_ms > 0) {
            double next = t0 + s->o->interval_ms / 1e3;
            double t = now();

            if (s->o->seconds > 0 && next > s->until) {
                next = s->until;
            }
            if (next > t) {
                sleep_s(next - t);
            }
        }
    }
    curl_easy_cleanup(c);
    curl_slist_free_all(hdr);
    OPENSSL_cleanse(r, sizeof(*r));
    free(r);
    return NULL;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;

    return (x > y) - (x < y);
}

static double
pct(const double *v, size_t n, double q)
{
    return n == 0 ? 0.0 : v[(size_t)((double)(n - 1) * q + 0.5)];
}

/* ---- subcommands ------------------------------------------------------------------------- */

static void
print_header(void)
{
    printf("%-30s %3s %7s %4s %8s %8s %8s %7s %6s | %7s %7s %8s\n", "row", "cli", "rel", "fail",
           "p50 ms", "p99 ms", "rel/s", "cpu ms", "rssKiB", "p50/RSA", "p50/kg", "rel/s/sg");
    printf("%-30s %3s %7s %4s %8s %8s %8s %7s %6s | %7s %7s %8s\n", "", "", "", "", "", "", "",
           "/rel", "max", "op", "", "%");
}

static int
cmd_run(const struct opts *o)
{
    struct shared s;
    struct worker *w = calloc((size_t)o->clients, sizeof(*w));
    struct monitor m;
    unsigned long long cpu0 = 0;
    unsigned long long cpu1 = 0;
    bool have_cpu = false;
    unsigned long idle_kib = 0;
    unsigned long idle_anon_kib = 0;
    unsigned long end_kib = 0;
    double t_start;
    double elapsed;
    double *all;
    size_t total = 0;
    size_t failures = 0;
    size_t busy = 0;
    unsigned long rss_start = 0;
    unsigned long rss_mid = 0;
    unsigned long rss_end = 0;
    unsigned long q3 = 0, q4 = 0, aq3 = 0, aq4 = 0;
    unsigned long long peer0 = 0;
    unsigned long long peer1 = 0;
    bool have_peer = false;
    double peer_cpu_ms = -1;
    double p50;
    double p99;
    double rps;
    double cpu_ms = -1;
    long ticks = sysconf(_SC_CLK_TCK);

    if (w == NULL) {
        return 1;
    }
    memset(&s, 0, sizeof(s));
    memset(&m, 0, sizeof(m));
    s.o = o;
    s.remaining = o->count;
    (void)pthread_mutex_init(&s.lock, NULL);
    (void)pthread_mutex_init(&m.lock, NULL);

    if (o->pid > 0) {
        have_cpu = proc_cpu_ticks(o->pid, &cpu0);
        if (!have_cpu || !proc_rss_kib(o->pid, &idle_kib)) {
            (void)fprintf(stderr, "bench_release: cannot read /proc/%ld\n", o->pid);
            free(w);
            return 1;
        }
        m.pid = o->pid;
        m.seconds = o->seconds;
        m.samples = o->rss_samples;
        (void)proc_status_kib(o->pid, "RssAnon", &idle_anon_kib);
        m.anon_series[m.nseries] = idle_anon_kib;
        m.series[m.nseries++] = idle_kib;
        m.next = 1;
    }
    if (o->peer_pid > 0) {
        have_peer = proc_cpu_ticks(o->peer_pid, &peer0);
    }
    t_start = now();
    s.until = t_start + o->seconds;
    m.t0 = t_start;
    if (o->pid > 0 && pthread_create(&m.thread, NULL, monitor_main, &m) != 0) {
        free(w);
        return 1;
    }
    for (long i = 0; i < o->clients; i++) {
        w[i].s = &s;
        if (pthread_create(&w[i].thread, NULL, worker_main, &w[i]) != 0) {
            (void)fprintf(stderr, "bench_release: pthread_create failed\n");
            exit(1);
        }
    }
    elapsed = 0;
    for (long i = 0; i < o->clients; i++) {
        (void)pthread_join(w[i].thread, NULL);
        total += w[i].n;
        failures += w[i].failures;
        busy += w[i].busy;
        if (w[i].last_done - t_start > elapsed) {
            elapsed = w[i].last_done - t_start;
        }
    }
    if (o->pid > 0) {
        (void)pthread_mutex_lock(&m.lock);
        m.stop = true;
        (void)pthread_mutex_unlock(&m.lock);
        (void)pthread_join(m.thread, NULL);
        if (proc_cpu_ticks(o->pid, &cpu1) && total > 0 && ticks > 0) {
            cpu_ms = 1e3 * (double)(cpu1 - cpu0) / (double)ticks / (double)total;
        }
        if (have_peer && proc_cpu_ticks(o->peer_pid, &peer1) && total > 0 && ticks > 0) {
            peer_cpu_ms = 1e3 * (double)(peer1 - peer0) / (double)ticks / (double)total;
        }
        if (proc_rss_kib(o->pid, &end_kib) && end_kib > m.max_kib) {
            m.max_kib = end_kib;
        }
    }

    all = calloc(total + 1, sizeof(double));
    if (all == NULL) {
        (void)fprintf(stderr, "bench_release: out of memory\n");
        exit(1);
    }
    for (long i = 0, k = 0; i < o->clients; i++) {
        if (w[i].n > 0) {
            memcpy(all + k, w[i].lat, w[i].n * sizeof(double));
        }
        k += (long)w[i].n;
        free(w[i].lat);
    }
    qsort(all, total, sizeof(double), cmp_double);
    p50 = 1e3 * pct(all, total, 0.50);
    p99 = 1e3 * pct(all, total, 0.99);
    rps = elapsed > 0 ? (double)total / elapsed : 0.0;

    printf("%-30.30s %3ld %7zu %4zu %8.2f %8.2f %8.1f ", o->label, o->clients, total, failures, p50,
           p99, rps);
    if (cpu_ms >= 0) {
        printf("%7.2f ", cpu_ms);
    } else {
        printf("%7s ", "-");
    }
    if (o->pid > 0) {
        printf("%6lu | ", m.max_kib);
    } else {
        printf("%6s | ", "-");
    }
    if (o->floor_sign > 0) {
        printf("%7.1f ", p50 / (1e3 / o->floor_sign));
    } else {
        printf("%7s ", "-");
    }
    if (o->floor_keygen_ms > 0) {
        printf("%7.2f ", p50 / o->floor_keygen_ms);
    } else {
        printf("%7s ", "-");
    }
    if (o->floor_sign > 0) {
        printf("%8.2f\n", 100.0 * rps / o->floor_sign);
    } else {
        printf("%8s\n", "-");
    }
    if (peer_cpu_ms >= 0) {
        printf("  %s CPU %.2f ms per release (skrd %.2f ms)\n", o->peer_name, peer_cpu_ms, cpu_ms);
    }
    if (o->pid > 0 && o->clients > 1) {
        printf("  skrd RssAnon (private memory) %lu KiB at most; the rest of VmRSS is shared "
               "library pages\n",
               m.max_anon_kib);
    }
    if (busy > 0) {
        printf("  %zu answers 503 (skrd busy: --max-releases), each retried after %.0f ms\n", busy,
               1e3 * BENCH_BUSY_PAUSE_S);
    }
    if (s.have_error) {
        printf("  first failure: HTTP %ld %s\n", s.first_status, s.first_error);
    }
    if (o->rss_samples > 1 && o->pid > 0) {
        /* series[0] before the load, series[k] at k/K of it (k = 1..K-1): the growth is
         * compared under load, from the middle to the last point, then idle before/after */
        long last = m.nseries - 1;

        rss_start = m.series[last >= 1 ? 1 : 0];
        rss_mid = m.series[(last + 1) / 2];
        rss_end = m.series[last];
        printf("  skrd VmRSS KiB, before the load then every %.1f s of it:",
               o->seconds / (double)o->rss_samples);
        for (long i = 0; i <= last; i++) {
            printf(" %lu", m.series[i]);
        }
        printf(", after it: %lu\n", end_kib);
        printf("  skrd RssAnon KiB at the same points:");
        for (long i = 0; i <= last; i++) {
            printf(" %lu", m.anon_series[i]);
        }
        printf("\n");
        printf("  under load: start %lu  middle %lu  end %lu KiB, growth over the second half "
               "%+ld KiB (%.0f bytes per release); idle before %lu, after %lu KiB\n",
               rss_start, rss_mid, rss_end, (long)rss_end - (long)rss_mid,
               total > 0 ? 2048.0 * ((double)rss_end - (double)rss_mid) / (double)total : 0.0,
               m.series[0], end_kib);
        /* points 1..last span the load: its third and fourth quarters, by median */
        q3 = median_kib(m.series, 1 + last / 2, 1 + 3 * last / 4);
        q4 = median_kib(m.series, 1 + 3 * last / 4, last + 1);
        aq3 = median_kib(m.anon_series, 1 + last / 2, 1 + 3 * last / 4);
        aq4 = median_kib(m.anon_series, 1 + 3 * last / 4, last + 1);
        printf("  median of the third quarter -> the fourth: VmRSS %lu -> %lu KiB (%+ld), "
               "RssAnon %lu -> %lu KiB (%+ld)\n",
               q3, q4, (long)q4 - (long)q3, aq3, aq4, (long)aq4 - (long)aq3);
    }
    (void)fflush(stdout);

    if (o->kv != NULL) {
        FILE *f = fopen(o->kv, "ae");

        if (f == NULL) {
            (void)fprintf(stderr, "bench_release: cannot open %s\n", o->kv);
            return 1;
        }
        (void)fprintf(
            f,
            "tag=%s clients=%ld releases=%zu failures=%zu busy=%zu p50_ms=%.3f p99_ms=%.3f "
            "rps=%.2f cpu_ms=%.3f rss_idle_kib=%lu rss_max_kib=%lu rss_anon_idle_kib=%lu "
            "rss_anon_max_kib=%lu",
            o->tag, o->clients, total, failures, busy, p50, p99, rps, cpu_ms, idle_kib, m.max_kib,
            idle_anon_kib, m.max_anon_kib);
        if (o->rss_samples > 1 && o->pid > 0) {
            (void)fprintf(f,
                          " rss_start_kib=%lu rss_mid_kib=%lu rss_end_kib=%lu rss_after_kib=%lu"
                          " rss_q3_kib=%lu rss_q4_kib=%lu anon_q3_kib=%lu anon_q4_kib=%lu",
                          rss_start, rss_mid, rss_end, end_kib, q3, q4, aq3, aq4);
        }
        if (peer_cpu_ms >= 0) {
            (void)fprintf(f, " peer_cpu_ms=%.3f", peer_cpu_ms);
        }
        (void)fprintf(f, "\n");
        (void)fclose(f);
    }
    free(all);
    free(w);
    (void)pthread_mutex_destroy(&s.lock);
    (void)pthread_mutex_destroy(&m.lock);
    return failures == 0 && total > 0 ? 0 : 1;
}

static int
cmd_keygen(long n)
{
    double *t = calloc((size_t)n, sizeof(double));
    double sum = 0;

    if (t == NULL) {
        return 1;
    }
    for (long i = 0; i < n; i++) {
        double t0 = now();
        EVP_PKEY *k = EVP_RSA_gen(2048);

        if (k == NULL) {
            (void)fprintf(stderr, "bench_release: EVP_RSA_gen failed\n");
            free(t);
            return 1;
        }
        t[i] = 1e3 * (now() - t0);
        sum += t[i];
        EVP_PKEY_free(k);
    }
    qsort(t, (size_t)n, sizeof(double), cmp_double);
    printf("rsa2048_keygen_ms mean %.1f median %.1f min %.1f max %.1f (%ld keys)\n",
           sum / (double)n, t[n / 2], t[0], t[n - 1], n);
    free(t);
    return 0;
}

static int
cmd_freeport(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0) {
        return 1;
    }
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        (void)close(fd);
        return 1;
    }
    printf("%u\n", (unsigned)ntohs(a.sin_port));
    (void)close(fd);
    return 0;
}

static int
usage(void)
{
    (void)fprintf(stderr,
                  "usage: bench_release header\n"
                  "       bench_release run URL BODY [--clients 1..%d] [--seconds S | --count N]\n"
                  "           [--pid PID] [--label TEXT] [--tag TAG] [--kv FILE]\n"
                  "           [--floor-sign RSA2048_SIGN_PER_S] [--floor-keygen-ms MS]\n"
                  "           [--rss-samples 2..%d] [--interval-ms MS]\n"
                  "           [--peer-pid PID [--peer-name NAME]]\n"
                  "       bench_release keygen N\n"
                  "       bench_release rss PID\n"
                  "       bench_release freeport\n",
                  BENCH_MAX_CLIENTS, BENCH_MAX_RSS_SAMP);
    return 2;
}

static int
parse_run(int argc, char **argv, struct opts *o)
{
    memset(o, 0, sizeof(*o));
    o->clients = 1;
    o->count = 1;
    o->label = "release";
    o->tag = "run";
    o->peer_name = "peer";
    if (argc < 4) {
        return usage();
    }
    o->url = argv[2];
    o->body = argv[3];
    if (strncmp(o->url, "http://127.0.0.1:", 17) != 0 &&
        strncmp(o->url, "http://localhost:", 17) != 0) {
        (void)fprintf(stderr, "bench_release: loopback http URLs only\n");
        return 2;
    }
    for (int i = 4; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = v != NULL;

        if (strcmp(a, "--clients") == 0) {
            ok = ok && parse_long(v, 1, BENCH_MAX_CLIENTS, &o->clients);
        } else if (strcmp(a, "--seconds") == 0) {
            ok = ok && parse_double(v, 0.1, BENCH_MAX_SECONDS, &o->seconds);
        } else if (strcmp(a, "--count") == 0) {
            ok = ok && parse_long(v, 1, BENCH_MAX_COUNT, &o->count);
        } else if (strcmp(a, "--pid") == 0) {
            ok = ok && parse_long(v, 1, 1L << 30, &o->pid);
        } else if (strcmp(a, "--peer-pid") == 0) {
            ok = ok && parse_long(v, 1, 1L << 30, &o->peer_pid);
        } else if (strcmp(a, "--peer-name") == 0) {
            o->peer_name = v;
        } else if (strcmp(a, "--label") == 0) {
            o->label = v;
        } else if (strcmp(a, "--tag") == 0) {
            o->tag = v;
        } else if (strcmp(a, "--kv") == 0) {
            o->kv = v;
        } else if (strcmp(a, "--floor-sign") == 0) {
            ok = ok && parse_double(v, 0, 1e9, &o->floor_sign);
        } else if (strcmp(a, "--floor-keygen-ms") == 0) {
            ok = ok && parse_double(v, 0, 1e6, &o->floor_keygen_ms);
        } else if (strcmp(a, "--interval-ms") == 0) {
            ok = ok && parse_double(v, 0, 60000, &o->interval_ms);
        } else if (strcmp(a, "--rss-samples") == 0) {
            ok = ok && parse_long(v, 2, BENCH_MAX_RSS_SAMP, &o->rss_samples);
        } else {
            ok = false;
        }
        if (!ok) {
            (void)fprintf(stderr, "bench_release: bad option %s %s\n", a, v != NULL ? v : "");
            return usage();
        }
        i++;
    }
    if (o->rss_samples > 0 && o->seconds <= 0) {
        (void)fprintf(stderr, "bench_release: --rss-samples needs --seconds\n");
        return 2;
    }
    return 0;
}

int
main(int argc, char **argv)
{
    struct opts o;
    long n = 0;
    int rc;

    if (argc < 2) {
        return usage();
    }
    if (strcmp(argv[1], "header") == 0) {
        print_header();
        return 0;
    }
    if (strcmp(argv[1], "freeport") == 0) {
        return cmd_freeport();
    }
    if (strcmp(argv[1], "keygen") == 0) {
        if (argc != 3 || !parse_long(argv[2], 1, 1000, &n)) {
            return usage();
        }
        return cmd_keygen(n);
    }
    if (strcmp(argv[1], "rss") == 0) {
        unsigned long kib = 0;

        if (argc != 3 || !parse_long(argv[2], 1, 1L << 30, &n)) {
            return usage();
        }
        if (!proc_rss_kib(n, &kib)) {
            (void)fprintf(stderr, "bench_release: cannot read /proc/%ld/status\n", n);
            return 1;
        }
        printf("%lu\n", kib);
        return 0;
    }
    if (strcmp(argv[1], "run") != 0) {
        return usage();
    }
    rc = parse_run(argc, argv, &o);
    if (rc != 0) {
        return rc;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        return 1;
    }
    rc = cmd_run(&o);
    curl_global_cleanup();
    return rc;
}
