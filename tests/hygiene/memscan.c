/*
 * memscan.c - the memory half of the secret hygiene test (tests/cli/test_hygiene.sh): looks for
 * secrets the test knows (released key members, raw and base64url; bearer tokens; a federated
 * assertion) and for anything shaped like a JWT in the writable memory of a process.
 *
 *   memscan self --needles DIR --maa EP --akv EP --kid NAME [--kid NAME]... [--token-file F]
 *                [--set NAME=VALUE]... [--leak]
 *       A libskr application (public API, as examples/custom-app.c): releases each key, checks
 *       that every needle is found in what it handled (the released JWKs, their decoded private
 *       members, the token), so the needles are right and the scan can find them; then frees
 *       everything (skr_string_free, skr_client_free, skr_config_free) and scans its own
 *       writable memory: heap, anonymous maps, thread stacks, .data/.bss of every library.
 *       --leak keeps a strdup() of each released JWK: the negative control, the scan must find
 *       it.
 *   memscan pid PID --needles DIR [--skip-dontdump] [--no-jwt]
 *       Scans another process's writable memory through /proc/PID/mem (root: CAP_SYS_PTRACE
 *       reads a non-dumpable process). --skip-dontdump leaves out MADV_DONTDUMP regions (live
 *       skr_secret pages, where a cached token may rightly be); --no-jwt does not count
 *       JWT-shaped strings as hits (they are still listed).
 *
 * A needle never exists in plain form here: DIR/LABEL.needle holds mask || (needle XOR mask),
 * and memory is compared XOR mask on the fly; the decoded members of the positive check live in
 * wiped buffers. Prints "hit LABEL REGION+OFFSET" per copy found (never the bytes), then a
 * summary. Exit 0 no hit, 1 hits, 2 usage, 3 failure (release, unreadable memory, a needle
 * found nowhere in the positive check).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <skr/skr.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "b64.h"
#include "buf.h"
#include "secret.h"

#define MAX_NEEDLES 64
#define MAX_KIDS    8
#define MAX_REGION  ((size_t)1 << 30)
#define JWT_MIN     16 /* characters in each part of a JWT-shaped string */

struct needle {
    char label[64];
    uint8_t *mask;
    uint8_t *masked;
    size_t len;
    size_t hits;
    bool seen; /* positive check */
};

struct scan {
    struct needle needles[MAX_NEEDLES];
    size_t n_needles;
    size_t regions;
    size_t bytes;
    size_t skipped;
    size_t hits;
    size_t jwts;
    bool count_jwt;
};

static int
usage(void)
{
    (void)fprintf(stderr, "usage: memscan self --needles DIR --maa EP --akv EP --kid NAME... "
                          "[--token-file F] [--set NAME=VALUE]... [--leak]\n"
                          "       memscan pid PID --needles DIR [--skip-dontdump] [--no-jwt]\n");
    return 2;
}

/* Reads a whole file with read(2) (no stdio buffer keeps a copy) into a malloc'd buffer with a
 * NUL after it; the buffers outgrown on the way are wiped. */
static int
read_all(const char *path, uint8_t **ret, size_t *ret_len)
{
    size_t cap = 4096;
    size_t len = 0;
    uint8_t *p = malloc(cap);
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0 || p == NULL) {
        (void)fprintf(stderr, "memscan: cannot read %s: %s\n", path, strerror(errno));
        if (fd >= 0) {
            (void)close(fd);
        }
        free(p);
        return 3;
    }
    for (;;) {
        ssize_t n;

        if (len + 1 >= cap) {
            uint8_t *q = malloc(cap * 2);

            if (q == NULL) {
                break;
            }
            memcpy(q, p, len);
            skr_wipe(p, cap);
            free(p);
            p = q;
            cap *= 2;
        }
        n = read(fd, p + len, cap - len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        len += (size_t)n;
    }
    (void)close(fd);
    p[len] = '\0';
    *ret = p;
    *ret_len = len;
    return 0;
}

static int
load_needles(const char *dir, struct scan *sc)
{
    DIR *d = opendir(dir);
    const struct dirent *e;

    if (d == NULL) {
        (void)fprintf(stderr, "memscan: cannot open %s: %s\n", dir, strerror(errno));
        return 3;
    }
    while ((e = readdir(d)) != NULL) {
        size_t nl = strlen(e->d_name);
        struct needle *n = &sc->needles[sc->n_needles];
        char path[4096];
        uint8_t *raw = NULL;
        size_t len = 0;

        if (nl < 8 || strcmp(e->d_name + nl - 7, ".needle") != 0) {
            continue;
        }
        if (sc->n_needles == MAX_NEEDLES || nl - 7 >= sizeof(n->label) ||
            snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= (int)sizeof(path) ||
            read_all(path, &raw, &len) != 0 || len < 8 || len % 2 != 0) {
            (void)fprintf(stderr, "memscan: bad needle %s\n", e->d_name);
            free(raw);
            (void)closedir(d);
            return 3;
        }
        memcpy(n->label, e->d_name, nl - 7);
        n->label[nl - 7] = '\0';
        n->len = len / 2;
        n->mask = raw;
        n->masked = raw + n->len;
        sc->n_needles++;
    }
    (void)closedir(d);
    if (sc->n_needles == 0) {
        (void)fprintf(stderr, "memscan: no *.needle in %s\n", dir);
        return 3;
    }
    return 0;
}

static bool
needle_at(const struct needle *n, const uint8_t *p)
{
    for (size_t i = 0; i < n->len; i++) {
        if ((uint8_t)(p[i] ^ n->mask[i]) != n->masked[i]) {
            return false;
        }
    }
    return true;
}

static bool
is_b64u(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

static size_t
b64u_run(const uint8_t *p, size_t len)
{
    size_t i = 0;

    while (i < len && is_b64u(p[i])) {
        i++;
    }
    return i;
}

/* Length of a JWT-shaped string at p ("eyJ..." "." "eyJ..." "." sig), 0 when there is none. */
static size_t
jwt_at(const uint8_t *p, size_t len)
{
    size_t a;
    size_t b;
    size_t c;

    if (len < 3 || p[0] != 'e' || p[1] != 'y' || p[2] != 'J') {
        return 0;
    }
    a = b64u_run(p, len);
    if (a < JWT_MIN || a + 4 >= len || p[a] != '.' || p[a + 1] != 'e' || p[a + 2] != 'y' ||
        p[a + 3] != 'J') {
        return 0;
    }
    b = b64u_run(p + a + 1, len - a - 1);
    if (b < JWT_MIN || a + 1 + b + 1 >= len || p[a + 1 + b] != '.') {
        return 0;
    }
    c = b64u_run(p + a + b + 2, len - a - b - 2);
    return c >= JWT_MIN ? a + b + 2 + c : 0;
}

/* Scans p[0..len) found at address base in region name; positive: only mark needles as seen. */
static void
scan_span(struct scan *sc, const uint8_t *p, size_t len, uintptr_t base, const char *name,
          bool positive)
{
    for (size_t off = 0; off < len; off++) {
        size_t j;

        for (size_t k = 0; k < sc->n_needles; k++) {
            struct needle *n = &sc->needles[k];

            if ((uint8_t)(p[off] ^ n->mask[0]) != n->masked[0] || len - off < n->len ||
                !needle_at(n, p + off)) {
                continue;
            }
            if (positive) {
                n->seen = true;
                continue;
            }
            n->hits++;
            sc->hits++;
            (void)printf("hit %s %s+0x%zx (at 0x%jx)\n", n->label, name, off,
                         (uintmax_t)(base + off));
        }
        if (positive || p[off] != 'e') {
            continue;
        }
        j = jwt_at(p + off, len - off);
        if (j > 0) {
            sc->jwts++;
            (void)printf("jwt-shaped %zu chars %s+0x%zx (at 0x%jx)\n", j, name, off,
                         (uintmax_t)(base + off));
            off += j - 1;
        }
    }
}

/* ---- regions, from /proc/PID/smaps --------------------------------------------------------- */

struct region {
    uintptr_t start;
    uintptr_t end;
    char name[96];
    bool dontdump;
};

/* Parses smaps into the writable regions; *ret is malloc'd. */
static int
read_regions(const char *smaps, struct region **ret, size_t *ret_n)
{
    uint8_t *text = NULL;
    size_t len = 0;
    size_t n = 0;
    size_t cap = 0;
    struct region *rs = NULL;
    char *line;
    char *save = NULL;
    bool cur_rw = false;

    if (read_all(smaps, &text, &len) != 0) {
        return 3;
    }
    for (line = strtok_r((char *)text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        char *dash = strchr(line, '-');
        char *sp = strchr(line, ' ');
        uint64_t a;
        uint64_t b;

        if (strncmp(line, "VmFlags:", 8) == 0) {
            if (cur_rw && strstr(line, " dd") != NULL) {
                rs[n - 1].dontdump = true;
            }
            continue;
        }
        if (dash == NULL || sp == NULL || dash > sp || strlen(sp) < 5 ||
            skr_parse_hex_u64(skr_span_make(line, (size_t)(dash - line)), &a) != SKR_OK ||
            skr_parse_hex_u64(skr_span_make(dash + 1, (size_t)(sp - dash - 1)), &b) != SKR_OK) {
            continue; /* a "Size:" etc. line */
        }
        cur_rw = sp[1] == 'r' && sp[2] == 'w';
        if (!cur_rw) {
            continue;
        }
        if (n == cap) {
            struct region *q = realloc(rs, (cap + 64) * sizeof(*rs));

            if (q == NULL) {
                free(rs);
                free(text);
                return 3;
            }
            rs = q;
            cap += 64;
        }
        rs[n].start = (uintptr_t)a;
        rs[n].end = (uintptr_t)b;
        rs[n].dontdump = false;
        {
            /* the path or [heap]/[stack] after the inode column, else "anon" */
            const char *name = "anon";
            const char *s = sp + 1;
            int col = 0;

            while (*s != '\0' && col < 4) {
                while (*s != '\0' && *s != ' ') {
                    s++;
                }
                while (*s == ' ') {
                    s++;
                }
                col++;
            }
            if (*s != '\0') {
                const char *slash = strrchr(s, '/');

                name = slash != NULL ? slash + 1 : s;
            }
            (void)snprintf(rs[n].name, sizeof(rs[n].name), "%s", name);
        }
        n++;
    }
    free(text);
    *ret = rs;
    *ret_n = n;
    return 0;
}

static int
scan_self(struct scan *sc)
{
    struct region *rs = NULL;
    size_t n = 0;

    if (read_regions("/proc/self/smaps", &rs, &n) != 0) {
        return 3;
    }
    for (size_t i = 0; i < n; i++) {
        /* our own memory: read in place, so that no copy of it is made while scanning */
        scan_span(sc, (const uint8_t *)rs[i].start, rs[i].end - rs[i].start, rs[i].start,
                  rs[i].name, false);
        sc->regions++;
        sc->bytes += rs[i].end - rs[i].start;
    }
    free(rs);
    return 0;
}

static int
scan_pid(struct scan *sc, const char *pid, bool skip_dontdump)
{
    struct region *rs = NULL;
    size_t n = 0;
    char path[64];
    int fd;
    int rc = 0;

    (void)snprintf(path, sizeof(path), "/proc/%s/smaps", pid);
    if (read_regions(path, &rs, &n) != 0) {
        return 3;
    }
    (void)snprintf(path, sizeof(path), "/proc/%s/mem", pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        (void)fprintf(stderr, "memscan: cannot open %s: %s\n", path, strerror(errno));
        free(rs);
        return errno == EACCES || errno == EPERM ? 77 : 3;
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        size_t len = rs[i].end - rs[i].start;
        uint8_t *buf;
        size_t got = 0;

        if (skip_dontdump && rs[i].dontdump) {
            sc->skipped++;
            continue;
        }
        if (len > MAX_REGION || (buf = malloc(len)) == NULL) {
            (void)fprintf(stderr, "memscan: region %s of %zu bytes too large\n", rs[i].name, len);
            rc = 3;
            break;
        }
        while (got < len) {
            ssize_t r = pread(fd, buf + got, len - got, (off_t)(rs[i].start + got));

            if (r < 0 && errno == EINTR) {
                continue;
            }
            if (r <= 0) {
                break;
            }
            got += (size_t)r;
        }
        if (got == 0 && len > 0) {
            /* unmapped since smaps was read (a thread ended): nothing left to leak there */
            (void)fprintf(stderr, "memscan: %s at 0x%jx unreadable (%s)\n", rs[i].name,
                          (uintmax_t)rs[i].start, strerror(errno));
        }
        scan_span(sc, buf, got, rs[i].start, rs[i].name, false);
        sc->regions++;
        sc->bytes += got;
        skr_wipe(buf, len);
        free(buf);
    }
    (void)close(fd);
    free(rs);
    return rc;
}

/* ---- self: a libskr application -------------------------------------------------------------- */

struct self_args {
    const char *maa;
    const char *akv;
    const char *kids[MAX_KIDS];
    size_t n_kids;
    const char *token_file;
    bool leak;
};

/* The positive check over a released JWK: its text, and each private member decoded. */
static void
positive_jwk(struct scan *sc, const char *jwk)
{
    static const char *const members[] = { "\"d\"",  "\"p\"",  "\"q\"", "\"dp\"",
                                           "\"dq\"", "\"qi\"", "\"k\"" };

    scan_span(sc, (const uint8_t *)jwk, strlen(jwk), 0, "jwk", true);
    for (size_t m = 0; m < SKR_ARRAY_LEN(members); m++) {
        const char *at = strstr(jwk, members[m]);
        const char *v;
        const char *end;
        struct skr_buf raw;

        if (at == NULL) {
            continue;
        }
        v = strchr(at + strlen(members[m]), '"');
        end = v != NULL ? strchr(v + 1, '"') : NULL;
        if (end == NULL) {
            continue;
        }
        skr_buf_init(&raw, 65536);
        if (skr_b64_decode(skr_span_make(v + 1, (size_t)(end - v - 1)), SKR_B64_URL, &raw) ==
            SKR_OK) {
            scan_span(sc, raw.ptr, raw.len, 0, "member", true);
        }
        skr_buf_done(&raw);
    }
}

static int
release_all(const struct self_args *a, skr_config *cfg, struct scan *sc, char *token)
{
    skr_error_info info = { 0 };
    skr_client *c = NULL;
    int rc = 0;

    if (skr_client_new(cfg, &c, &info) != SKR_OK) {
        (void)fprintf(stderr, "memscan: client: %s: %s\n", info.stage, info.message);
        return 3;
    }
    for (size_t i = 0; i < a->n_kids && rc == 0; i++) {
        skr_release_request req = { a->maa, a->akv, a->kids[i], token };
        char *jwk = NULL;

        if (skr_key_release(c, &req, &jwk, &info) != SKR_OK) {
            (void)fprintf(stderr, "memscan: release %s: %s: %s\n", a->kids[i], info.stage,
                          info.message);
            rc = 3;
            break;
        }
        positive_jwk(sc, jwk);
        if (a->leak) {
            /* the negative control: a copy of the released key that nobody wipes */
            char *volatile copy = strdup(jwk);

            (void)printf("leak: kept a copy of the released JWK at %p\n", (void *)copy);
        }
        skr_string_free(jwk);
    }
    skr_client_free(c);
    return rc;
}

static int
mode_self(int argc, char **argv, struct scan *sc)
{
    static const struct option lopts[] = {
        { "needles", required_argument, NULL, 'n' },
        { "maa", required_argument, NULL, 'm' },
        { "akv", required_argument, NULL, 'a' },
        { "kid", required_argument, NULL, 'k' },
        { "token-file", required_argument, NULL, 't' },
        { "set", required_argument, NULL, 's' },
        { "leak", no_argument, NULL, 'l' },
        { NULL, 0, NULL, 0 },
    };
    struct self_args a = { 0 };
    const char *needles = NULL;
    uint8_t *token = NULL;
    size_t token_len = 0;
    skr_config *cfg = NULL;
    int ch;
    int rc = 0;

    if (skr_config_new(&cfg) != SKR_OK) {
        return 3;
    }
    while ((ch = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
        char name[64];
        const char *eq;

        switch (ch) {
        case 'n':
            needles = optarg;
            break;
        case 'm':
            a.maa = optarg;
            break;
        case 'a':
            a.akv = optarg;
            break;
        case 'k':
            if (a.n_kids == MAX_KIDS) {
                rc = 2;
                break;
            }
            a.kids[a.n_kids++] = optarg;
            break;
        case 't':
            a.token_file = optarg;
            break;
        case 'l':
            a.leak = true;
            break;
        case 's':
            eq = strchr(optarg, '=');
            if (eq == NULL || (size_t)(eq - optarg) >= sizeof(name)) {
                rc = 2;
                break;
            }
            memcpy(name, optarg, (size_t)(eq - optarg));
            name[eq - optarg] = '\0';
            if (skr_config_set(cfg, name, eq + 1) != SKR_OK) {
                (void)fprintf(stderr, "memscan: %s\n", skr_err_detail());
                rc = 2;
            }
            break;
        default:
            rc = 2;
            break;
        }
    }
    if (rc == 0 && (needles == NULL || a.maa == NULL || a.akv == NULL || a.n_kids == 0)) {
        rc = 2;
    }
    if (rc == 2) {
        skr_config_free(cfg);
        return usage();
    }
    rc = load_needles(needles, sc);
    if (rc == 0 && a.token_file != NULL) {
        rc = read_all(a.token_file, &token, &token_len);
        while (rc == 0 && token_len > 0 &&
               (token[token_len - 1] == '\n' || token[token_len - 1] == '\r')) {
            token[--token_len] = '\0';
        }
        if (rc == 0) {
            scan_span(sc, token, token_len, 0, "token", true);
        }
    }
    if (rc == 0) {
        rc = release_all(&a, cfg, sc, (char *)token);
    }
    skr_config_free(cfg);
    if (token != NULL) {
        /* the application's own copy of its token: wiped, as an application should */
        skr_wipe(token, token_len);
        free(token);
    }
    if (rc != 0) {
        return rc;
    }
    for (size_t k = 0; k < sc->n_needles; k++) {
        if (!sc->needles[k].seen) {
            (void)fprintf(stderr,
                          "memscan: needle %s is in nothing that was released or used: "
                          "the test's needles are wrong\n",
                          sc->needles[k].label);
            rc = 3;
        }
    }
    (void)printf("positive: all %zu needles found in the released keys and the token before "
                 "they were freed\n",
                 sc->n_needles);
    (void)printf("secrets still allocated after skr_client_free: %zu\n", skr_secret_live());
    if (rc == 0 && skr_secret_live() != 0) {
        rc = 1;
    }
    (void)fflush(stdout);
    return rc != 0 ? rc : scan_self(sc);
}

static int
mode_pid(int argc, char **argv, struct scan *sc)
{
    static const struct option lopts[] = {
        { "needles", required_argument, NULL, 'n' },
        { "skip-dontdump", no_argument, NULL, 'd' },
        { "no-jwt", no_argument, NULL, 'j' },
        { NULL, 0, NULL, 0 },
    };
    const char *needles = NULL;
    const char *pid;
    bool skip = false;
    int ch;
    int rc;

    if (argc < 2) {
        return usage();
    }
    pid = argv[1];
    optind = 2;
    while ((ch = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
        switch (ch) {
        case 'n':
            needles = optarg;
            break;
        case 'd':
            skip = true;
            break;
        case 'j':
            sc->count_jwt = false;
            break;
        default:
            return usage();
        }
    }
    if (needles == NULL || strspn(pid, "0123456789") != strlen(pid) || pid[0] == '\0') {
        return usage();
    }
    rc = load_needles(needles, sc);
    return rc != 0 ? rc : scan_pid(sc, pid, skip);
}

int
main(int argc, char **argv)
{
    static struct scan sc = { .count_jwt = true };
    int rc;

    if (argc < 2) {
        return usage();
    }
    if (strcmp(argv[1], "self") == 0) {
        rc = mode_self(argc - 1, argv + 1, &sc);
    } else if (strcmp(argv[1], "pid") == 0) {
        rc = mode_pid(argc - 1, argv + 1, &sc);
    } else {
        return usage();
    }
    if (rc != 0) {
        return rc;
    }
    (void)printf("scanned %zu writable regions, %zu bytes (%zu MADV_DONTDUMP regions skipped): "
                 "%zu needle hits, %zu JWT-shaped strings\n",
                 sc.regions, sc.bytes, sc.skipped, sc.hits, sc.jwts);
    for (size_t k = 0; k < sc.n_needles; k++) {
        (void)printf("needle %s (%zu bytes): %zu copies\n", sc.needles[k].label, sc.needles[k].len,
                     sc.needles[k].hits);
    }
    return sc.hits > 0 || (sc.count_jwt && sc.jwts > 0) ? 1 : 0;
}
