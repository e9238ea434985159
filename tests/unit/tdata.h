/*
 * tdata.h - what the unit tests share: reading a vector from $SKR_TEST_DATA and asserting on
 * the last error message. Include after <cmocka.h>.
 */
#pragma once

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

#define TDATA_MAX (1u << 16)

/* Reads $SKR_TEST_DATA/rel into a malloc'd buffer (the caller frees it); fails the test when
 * the file is absent or not smaller than TDATA_MAX. */
static inline uint8_t *
t_read_data(const char *rel, size_t *ret_len)
{
    const char *dir = getenv("SKR_TEST_DATA");
    char path[1024];
    FILE *f;
    uint8_t *buf;
    size_t n;

    assert_non_null(dir);
    assert_true(snprintf(path, sizeof(path), "%s/%s", dir, rel) < (int)sizeof(path));
    f = fopen(path, "rbe");
    if (f == NULL) {
        fail_msg("cannot open %s", path);
    }
    buf = malloc(TDATA_MAX);
    assert_non_null(buf);
    n = fread(buf, 1, TDATA_MAX, f);
    assert_int_equal(ferror(f), 0);
    assert_true(n < TDATA_MAX);
    fclose(f);
    *ret_len = n;
    return buf;
}

/* The last error message on this thread contains needle. */
static inline void
assert_msg_contains(const char *needle)
{
    const char *m = skr_err_msg();

    assert_non_null(m);
    if (strstr(m, needle) == NULL) {
        fail_msg("error message '%s' lacks '%s'", m, needle);
    }
}
