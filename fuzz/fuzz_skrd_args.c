/*
 * fuzz_skrd_args.c - skrd's configuration loader on an arbitrary SkrSideCarArgs value: the
 * fuzz input is base64-encoded and passed as `skrd -base64 <it>` (the reference's way to give
 * the certcache, identity and maaconfig settings), so the decoder, the JSON parser and every
 * member check see bytes an attacker who controls the container's command line could send.
 *
 * The loader explains every rejection on stderr: run it with -close_fd_mask=2 (scripts/fuzz-run
 * does) to keep libFuzzer's own output readable.
 *
 * Properties: no crash or leak; a load that succeeds yields a configuration whose libskr
 * options were all accepted (skrd_config_load returns SKRD_EXIT_OK only then), and a failure
 * is SKRD_EXIT_USAGE, never anything else.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "b64.h"
#include "buf.h"
#include "skrd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char prog[] = "skrd";
    static char flag[] = "-base64";
    _cleanup_(skr_buf_donep) struct skr_buf b64 = { 0 };
    struct skrd_config cfg;
    const char *arg = NULL;
    char *value = NULL;
    char *argv[4];
    int rc;

    skr_buf_init(&b64, 4 * size + 16);
    if (skr_b64_encode(skr_span_make(data, size), SKR_B64_STD, &b64) != SKR_OK ||
        skr_buf_cstr(&b64, &arg) != SKR_OK) {
        return 0;
    }
    value = strdup(arg);
    if (value == NULL) {
        return 0;
    }
    argv[0] = prog;
    argv[1] = flag;
    argv[2] = value;
    argv[3] = NULL;
    rc = skrd_config_load(&cfg, 3, argv);
    free(value);
    if (rc != SKRD_EXIT_OK && rc != SKRD_EXIT_USAGE) {
        abort();
    }
    if (rc == SKRD_EXIT_OK && (cfg.lib == NULL || cfg.effective == NULL)) {
        abort();
    }
    skrd_config_done(&cfg);
    return 0;
}
