/*
 * cmd_crypt.c - `skr encrypt|decrypt --key JWK`: use a released key on data (issue #4
 * "Consuming the key"). The format and the cryptography are lib/envelope.c
 * (docs/encryption-format.md); this file reads the key and the input, and writes the output
 * only once the whole operation succeeded.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "envelope.h"
#include "json.h"
#include "skr_limits.h"

static const char usage_encrypt[] =
    "usage: skr encrypt --key JWK [--in FILE|-] [--out FILE|-] [--aad TEXT]\n"
    "\n"
    "Encrypts --in (default: standard input) to --out (default: standard output) in the\n"
    "versioned SKRE format (docs/encryption-format.md). JWK is a file holding the key as skrd's\n"
    "/key/release returns it: the bare JWK or the whole {\"key\":\"<JWK>\"} response; \"-\" reads\n"
    "it from standard input, allowed only when --in names a file.\n"
    "  oct key (16, 24, 32 bytes)  AES-128/192/256-GCM with the key itself\n"
    "  RSA key (public is enough)  a fresh AES-256-GCM data key wrapped with RSA-OAEP-256\n"
    "  EC keys are refused.\n"
    "--aad TEXT is authenticated but not stored: decrypting needs the same TEXT.\n"
    "Input is at most 1 GiB, held in memory. Exit codes: 0 ok, 2 bad usage or input\n"
    "(including an unusable key), 3 I/O error.\n";

static const char usage_decrypt[] =
    "usage: skr decrypt --key JWK [--in FILE|-] [--out FILE|-] [--aad TEXT]\n"
    "\n"
    "Decrypts an SKRE file made by 'skr encrypt' (or any implementation of\n"
    "docs/encryption-format.md). JWK as for encrypt; it must be the key the file names by its\n"
    "RFC 7638 thumbprint (a wrong key is reported before any decryption), and an RSA key needs\n"
    "its private members. Nothing is written unless the GCM tag verified: --out FILE is then\n"
    "replaced atomically with mode 0600; standard output gets the plaintext in one piece.\n"
    "Exit codes: 0 ok, 1 authentication failed (wrong key, altered file or --aad), 2 bad usage\n"
    "or input, 3 I/O error.\n";

/* Room around the ciphertext in an encrypted file: the fixed header, the largest RSA wrapped
 * key, nonce and tag. */
#define FILE_OVERHEAD                                                                              \
    (SKR_ENV_FIXED_LEN + SKR_MAX_RSA_BITS / 8 + SKR_ENV_NONCE_LEN + SKR_ENV_TAG_LEN)

struct crypt_args {
    const char *key;
    const char *in;
    const char *out;
    const char *aad;
};

/* Usage errors return SKR_EXIT_USAGE itself (cli_usage_error's result, which gcc -fanalyzer
 * cannot see), so that "SKR_EXIT_OK and not done means a->key is set" is plain to read. */
static int
parse_args(int argc, char **argv, const char *use, struct crypt_args *a, bool *done)
{
    static const struct option opts[] = {
        { "key", required_argument, NULL, 'k' }, { "in", required_argument, NULL, 'i' },
        { "out", required_argument, NULL, 'o' }, { "aad", required_argument, NULL, 'a' },
        { "help", no_argument, NULL, 'h' },      { 0 },
    };
    int c;

    *a = (struct crypt_args){ .in = "-", .out = "-" };
    *done = false;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'k') {
            a->key = optarg;
        } else if (c == 'i') {
            a->in = optarg;
        } else if (c == 'o') {
            a->out = optarg;
        } else if (c == 'a') {
            a->aad = optarg;
        } else if (c == 'h') {
            (void)fputs(use, stdout);
            *done = true;
            return SKR_EXIT_OK;
        } else {
            (void)cli_usage_error(use, "bad option");
            return SKR_EXIT_USAGE;
        }
    }
    if (optind != argc) {
        (void)cli_usage_error(use, "unexpected argument '%s'", argv[optind]);
        return SKR_EXIT_USAGE;
    }
    if (a->key == NULL) {
        (void)cli_usage_error(use, "--key JWK is required");
        return SKR_EXIT_USAGE;
    }
    if (strcmp(a->key, "-") == 0 && strcmp(a->in, "-") == 0) {
        (void)cli_usage_error(use, "--key -: standard input can hold the key only when --in "
                                   "names a file");
        return SKR_EXIT_USAGE;
    }
    return SKR_EXIT_OK;
}

/* Reads path ("-" = stdin) bounded by max; a regular file's size is checked (and its memory
 * reserved) before the first read. */
static skr_err
read_input(const char *path, size_t max, struct skr_buf *b)
{
    struct stat st;

    skr_buf_init(b, max);
    if (strcmp(path, "-") != 0 && stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
        if ((uint64_t)st.st_size > max) {
            FAILF(SKR_E_TOO_LARGE, "input is %lld bytes; the limit is %zu (1 GiB of data)",
                  (long long)st.st_size, max);
        }
        TRY(skr_buf_reserve(b, (size_t)st.st_size));
    }
    return skr_read_file(path, b);
}

static int
load_key(const char *path, struct skr_env_key **ret)
{
    _cleanup_(skr_buf_donep) struct skr_buf text = { 0 };
    skr_err e;

    skr_buf_init(&text, SKR_MAX_KEY_FILE_BYTES);
    e = skr_read_file(path, &text);
    if (e == SKR_OK) {
        e = skr_env_key_from_jwk(skr_buf_span(&text), ret);
    }
    return e == SKR_OK ? SKR_EXIT_OK
                       : cli_fail(e, strcmp(path, "-") == 0 ? "standard input" : path);
}

static int
write_output(const char *path, struct skr_span data, unsigned int mode)
{
    skr_err e;

    if (strcmp(path, "-") == 0) {
        e = cli_write(NULL, data);
    } else {
        e = skr_write_file_atomic(path, data, mode);
    }
    return e == SKR_OK ? SKR_EXIT_OK : cli_fail(e, strcmp(path, "-") == 0 ? "output" : path);
}

static int
run(int argc, char **argv, bool enc)
{
    _cleanup_(skr_env_key_freep) struct skr_env_key *key = NULL;
    _cleanup_(skr_buf_donep) struct skr_buf in = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf out = { 0 };
    const char *use = enc ? usage_encrypt : usage_decrypt;
    struct crypt_args a;
    struct skr_span aad;
    bool done = false;
    skr_err e;
    int rc;

    rc = parse_args(argc, argv, use, &a, &done);
    if (rc != SKR_EXIT_OK || done) {
        return rc;
    }
    if (enc && strcmp(a.out, "-") == 0 && isatty(STDOUT_FILENO)) {
        return cli_usage_error(use, "refusing to write binary data to a terminal: use --out "
                                    "FILE or a redirection");
    }
    /* Before jansson's first allocation: every later one is wiped when freed. */
    skr_json_wipe_on_free(); /* the key file's JWK text leaves no copy behind (STYLE.md C10) */
    rc = load_key(a.key, &key);
    if (rc != SKR_EXIT_OK) {
        return rc;
    }
    e = read_input(a.in, enc ? SKR_MAX_CRYPT_BYTES : SKR_MAX_CRYPT_BYTES + FILE_OVERHEAD, &in);
    if (e != SKR_OK) {
        return cli_fail(e, strcmp(a.in, "-") == 0 ? "standard input" : a.in);
    }
    aad = skr_span_str(a.aad);
    skr_buf_init(&out, enc ? SKR_MAX_CRYPT_BYTES + FILE_OVERHEAD : SKR_MAX_CRYPT_BYTES);
    if (enc) {
        e = skr_env_encrypt(key, skr_buf_span(&in), aad, &out);
    } else {
        e = skr_env_decrypt(key, skr_buf_span(&in), aad, &out);
    }
    if (e != SKR_OK) {
        return cli_fail(e, enc ? "encrypt" : "decrypt");
    }
    return write_output(a.out, skr_buf_span(&out), enc ? 0644u : 0600u);
}

int
cmd_encrypt(int argc, char **argv)
{
    return run(argc, argv, true);
}

int
cmd_decrypt(int argc, char **argv)
{
    return run(argc, argv, false);
}
