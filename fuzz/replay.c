/*
 * replay.c - runs every file of a fuzz corpus directory through LLVMFuzzerTestOneInput, so the
 * corpora are regression tests in the ordinary (gcc, and ASan) test suite (STYLE.md C20,
 * systemd fuzz-main.c). Usage: fuzz_<target> DIR|FILE...
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Bigger than any corpus entry libFuzzer writes with its default -max_len. */
#define REPLAY_MAX_INPUT (1u << 20)

static int
replay_file(const char *path)
{
    _cleanup_(skr_buf_donep) struct skr_buf b = { 0 };
    uint8_t *copy;

    skr_buf_init(&b, REPLAY_MAX_INPUT);
    if (skr_read_file(path, &b) != SKR_OK) {
        (void)fprintf(stderr, "replay: cannot read %s: %s\n", path, skr_err_msg());
        return 1;
    }
    /* An exact-size heap copy lets ASan see any read past the end of the input. */
    copy = malloc(b.len > 0 ? b.len : 1);
    if (copy == NULL) {
        return 1;
    }
    if (b.len > 0) {
        memcpy(copy, b.ptr, b.len);
    }
    (void)LLVMFuzzerTestOneInput(copy, b.len);
    free(copy);
    return 0;
}

static int
replay_dir(const char *dir, size_t *count)
{
    struct dirent **names = NULL;
    int n = scandir(dir, &names, NULL, alphasort);
    int failed = 0;

    if (n < 0) {
        (void)fprintf(stderr, "replay: cannot list %s\n", dir);
        return 1;
    }
    for (int i = 0; i < n; i++) {
        char path[4096];
        struct stat st;

        if (names[i]->d_name[0] != '.' &&
            snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name) < (int)sizeof(path) &&
            stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            failed |= replay_file(path);
            (*count)++;
        }
        free(names[i]);
    }
    free(names);
    return failed;
}

int
main(int argc, char **argv)
{
    size_t count = 0;
    int failed = 0;

    for (int i = 1; i < argc; i++) {
        struct stat st;

        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            failed |= replay_dir(argv[i], &count);
        } else {
            failed |= replay_file(argv[i]);
            count++;
        }
    }
    (void)printf("replayed %zu inputs\n", count);
    if (count == 0) {
        (void)fprintf(stderr, "replay: empty corpus\n");
        return 1;
    }
    return failed;
}
