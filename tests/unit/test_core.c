/*
 * test_core.c - err, buf, b64, hex and json: positive cases, RFC vectors and negative tables.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "b64.h"
#include "buf.h"
#include "err.h"
#include "hex.h"
#include "json.h"
#include "skr_limits.h"

static skr_err
fail_here(void)
{
    FAILF(SKR_E_MALFORMED, "field '%s' broken", "x");
}

static skr_err
wrap_inner(void)
{
    (void)fail_here();
    FAILF(SKR_E_MALFORMED, "outer: %s", skr_err_msg());
}

static void
test_err(void **state)
{
    (void)state;
    assert_int_equal(fail_here(), SKR_E_MALFORMED);
    assert_string_equal(skr_err_msg(), "field 'x' broken");
    assert_string_equal(skr_err_last()->file, "test_core.c");
    assert_non_null(strstr(skr_err_detail(), "test_core.c:"));
    assert_string_equal(skr_err_name(SKR_E_VERIFY), "SKR_E_VERIFY");
    assert_string_equal(skr_err_str(SKR_OK), "ok");
    assert_string_equal(skr_err_str((skr_err)999), "unknown error");
    /* adding context to an inner error reads the slot it writes */
    assert_int_equal(wrap_inner(), SKR_E_MALFORMED);
    assert_string_equal(skr_err_msg(), "outer: field 'x' broken");
    skr_err_clear();
    assert_int_equal(skr_err_last()->code, SKR_OK);
}

static void
test_buf_limits(void **state)
{
    _cleanup_(skr_buf_donep) struct skr_buf b = { 0 };
    const char *s = NULL;

    (void)state;
    skr_buf_init(&b, 8);
    assert_int_equal(skr_buf_append(&b, "12345678", 8), SKR_OK);
    assert_int_equal(skr_buf_append(&b, "9", 1), SKR_E_TOO_LARGE);
    assert_int_equal(b.len, 8);
    assert_int_equal(skr_buf_cstr(&b, &s), SKR_OK);
    assert_string_equal(s, "12345678");
    skr_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_int_equal(skr_buf_printf(&b, "%d-%s", 42, "ab"), SKR_OK);
    assert_memory_equal(b.ptr, "42-ab", 5);
    assert_int_equal(skr_buf_printf(&b, "%s", "toolong"), SKR_E_TOO_LARGE);
    assert_int_equal(skr_buf_append(&b, NULL, 1), SKR_E_INVALID_ARG);
    assert_int_equal(skr_buf_append(&b, NULL, 0), SKR_OK);
}

static void
test_buf_grow(void **state)
{
    _cleanup_(skr_buf_donep) struct skr_buf b = { 0 };

    (void)state;
    skr_buf_init(&b, 100000);
    for (int i = 0; i < 10000; i++) {
        assert_int_equal(skr_buf_append_byte(&b, (uint8_t)i), SKR_OK);
    }
    assert_int_equal(b.len, 10000);
    assert_int_equal(b.ptr[9999], (uint8_t)9999);
    assert_true(b.cap <= b.max + 1);
}

static void
test_rd(void **state)
{
    static const uint8_t data[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };
    struct skr_rd rd;
    struct skr_span s;
    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;

    (void)state;
    skr_rd_init(&rd, skr_span_make(data, sizeof(data)));
    assert_int_equal(skr_rd_u8(&rd, &u8), SKR_OK);
    assert_int_equal(u8, 1);
    assert_int_equal(skr_rd_u16le(&rd, &u16), SKR_OK);
    assert_int_equal(u16, 0x0302);
    assert_int_equal(skr_rd_u32le(&rd, &u32), SKR_OK);
    assert_int_equal(u32, 0x07060504);
    assert_int_equal(skr_rd_u64le(&rd, &u64), SKR_OK);
    assert_true(u64 == 0x0f0e0d0c0b0a0908ull);
    assert_int_equal(skr_rd_left(&rd), 0);
    /* at the end: every reader fails and the cursor does not move */
    assert_int_equal(skr_rd_u8(&rd, &u8), SKR_E_TRUNCATED);
    assert_int_equal(rd.off, 15);
    skr_rd_init(&rd, skr_span_make(data, 3));
    assert_int_equal(skr_rd_u32le(&rd, &u32), SKR_E_TRUNCATED);
    assert_int_equal(rd.off, 0);
    assert_int_equal(skr_rd_bytes(&rd, SIZE_MAX, &s), SKR_E_TRUNCATED);
    assert_int_equal(skr_rd_skip(&rd, 3), SKR_OK);
    assert_int_equal(skr_rd_skip(&rd, 1), SKR_E_TRUNCATED);
}

static void
test_put_get(void **state)
{
    uint8_t b[8];

    (void)state;
    skr_put_u64le(b, 0x1122334455667788ull);
    assert_int_equal(b[0], 0x88);
    assert_int_equal(b[7], 0x11);
    assert_true(skr_get_u64le(b) == 0x1122334455667788ull);
    skr_put_u32le(b, 0xa1b2c3d4u);
    assert_int_equal(skr_get_u32le(b), 0xa1b2c3d4u);
    skr_put_u16le(b, 0xbeef);
    assert_int_equal(b[0], 0xef);
    assert_int_equal(b[1], 0xbe);
}

static void
test_parse_u64(void **state)
{
    uint64_t v = 0;

    (void)state;
    assert_int_equal(skr_parse_u64(skr_span_str("0"), false, 0, 10, &v), SKR_OK);
    assert_int_equal(v, 0);
    assert_int_equal(skr_parse_u64(skr_span_str("18446744073709551615"), false, 0, UINT64_MAX, &v),
                     SKR_OK);
    assert_true(v == UINT64_MAX);
    assert_int_equal(skr_parse_u64(skr_span_str("0x1F"), true, 0, 100, &v), SKR_OK);
    assert_int_equal(v, 31);
    static const char *const bad[] = { "",   "-1", "1a", " 1",  "1 ", "18446744073709551616",
                                       "0x", "+5", "11", "0x1F" };
    for (size_t i = 0; i < SKR_ARRAY_LEN(bad); i++) {
        assert_int_equal(skr_parse_u64(skr_span_str(bad[i]), false, 0, 10, &v), SKR_E_MALFORMED);
    }
}

static void
test_parse_hex_u64(void **state)
{
    static const char *const bad[] = { "", "0x1", "g", "12345678901234567", " 1", "-1" };
    uint64_t v = 0;

    (void)state;
    assert_int_equal(skr_parse_hex_u64(skr_span_str("7308000000000003"), &v), SKR_OK);
    assert_true(v == 0x7308000000000003ull);
    assert_int_equal(skr_parse_hex_u64(skr_span_str("fF"), &v), SKR_OK);
    assert_int_equal(v, 255);
    for (size_t i = 0; i < SKR_ARRAY_LEN(bad); i++) {
        assert_int_equal(skr_parse_hex_u64(skr_span_str(bad[i]), &v), SKR_E_MALFORMED);
    }
}

static void
test_files(void **state)
{
    char dir[] = "/tmp/skr-test-XXXXXX";
    char path[64];
    struct stat st;
    _cleanup_(skr_buf_donep) struct skr_buf b = { 0 };

    (void)state;
    assert_non_null(mkdtemp(dir));
    (void)snprintf(path, sizeof(path), "%s/f", dir);
    assert_int_equal(skr_write_file_atomic(path, skr_span_str("hello"), 0600), SKR_OK);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    skr_buf_init(&b, 5);
    assert_int_equal(skr_read_file(path, &b), SKR_OK);
    assert_memory_equal(b.ptr, "hello", 5);
    skr_buf_done(&b);
    skr_buf_init(&b, 4);
    assert_int_equal(skr_read_file(path, &b), SKR_E_TOO_LARGE);
    skr_buf_done(&b);
    (void)snprintf(path, sizeof(path), "%s/missing", dir);
    assert_int_equal(skr_read_file(path, &b), SKR_E_NOT_FOUND);
    assert_non_null(strstr(skr_err_msg(), "missing"));
    (void)snprintf(path, sizeof(path), "%s/f", dir);
    (void)unlink(path);
    (void)rmdir(dir);
}

/* RFC 4648 §10 test vectors */
static void
test_b64_rfc4648(void **state)
{
    static const char *const plain[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
    static const char *const enc[] = { "",         "Zg==",     "Zm8=",    "Zm9v",
                                       "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy" };

    (void)state;
    for (size_t i = 0; i < SKR_ARRAY_LEN(plain); i++) {
        _cleanup_(skr_buf_donep) struct skr_buf e = { 0 };
        _cleanup_(skr_buf_donep) struct skr_buf d = { 0 };
        _cleanup_(skr_buf_donep) struct skr_buf d2 = { 0 };
        size_t unpadded = strcspn(enc[i], "=");

        skr_buf_init(&e, 64);
        skr_buf_init(&d, 64);
        skr_buf_init(&d2, 64);
        assert_int_equal(skr_b64_encode(skr_span_str(plain[i]), SKR_B64_STD | SKR_B64_PAD, &e),
                         SKR_OK);
        assert_int_equal(e.len, strlen(enc[i]));
        assert_memory_equal(e.ptr, enc[i], e.len);
        skr_buf_reset(&e);
        assert_int_equal(skr_b64_encode(skr_span_str(plain[i]), SKR_B64_URL, &e), SKR_OK);
        assert_int_equal(e.len, unpadded);
        /* padded and unpadded both decode */
        assert_int_equal(skr_b64_decode(skr_span_str(enc[i]), SKR_B64_STD, &d), SKR_OK);
        assert_int_equal(d.len, strlen(plain[i]));
        assert_memory_equal(d.ptr, plain[i], d.len);
        assert_int_equal(skr_b64_decode(skr_span_make(enc[i], unpadded), SKR_B64_URL, &d2), SKR_OK);
        assert_int_equal(d2.len, strlen(plain[i]));
    }
}

static void
test_b64_alphabets(void **state)
{
    static const uint8_t bytes[] = { 0xfb, 0xff, 0xbf };
    _cleanup_(skr_buf_donep) struct skr_buf e = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf d = { 0 };

    (void)state;
    skr_buf_init(&e, 64);
    skr_buf_init(&d, 64);
    assert_int_equal(skr_b64_encode(skr_span_make(bytes, 3), SKR_B64_STD, &e), SKR_OK);
    assert_memory_equal(e.ptr, "+/+/", 4);
    skr_buf_reset(&e);
    assert_int_equal(skr_b64_encode(skr_span_make(bytes, 3), SKR_B64_URL, &e), SKR_OK);
    assert_memory_equal(e.ptr, "-_-_", 4);
    assert_int_equal(skr_b64_decode(skr_span_str("-_-_"), SKR_B64_STD, &d), SKR_E_MALFORMED);
    assert_int_equal(skr_b64_decode(skr_span_str("+/+/"), SKR_B64_URL, &d), SKR_E_MALFORMED);
    assert_int_equal(skr_b64_decode(skr_span_str("-_+/"), SKR_B64_ANY, &d), SKR_OK);
    assert_int_equal(d.len, 3);
    assert_memory_equal(d.ptr, bytes, 3);
}

static void
test_b64_negative(void **state)
{
    static const char *const bad[] = {
        "Z",        /* one char: impossible length */
        "Zm9vY",    /* 5 chars */
        "Zg=",      /* wrong padding */
        "Zg===",    /* too much padding */
        "Zm8==",    /* wrong padding for 3 chars */
        "Zg==Zg==", /* data after padding */
        "Zm9v\n",   /* whitespace without SKIP_WS */
        "Zm9v!",    /* invalid character */
        "Zm9v\0",   /* NUL inside (length covers it) */
        "====",     /* padding only */
    };
    _cleanup_(skr_buf_donep) struct skr_buf d = { 0 };

    (void)state;
    skr_buf_init(&d, 64);
    for (size_t i = 0; i < SKR_ARRAY_LEN(bad); i++) {
        size_t len = strlen(bad[i]) + (i == 8 ? 1 : 0);

        assert_int_equal(skr_b64_decode(skr_span_make(bad[i], len), SKR_B64_ANY, &d),
                         SKR_E_MALFORMED);
        assert_int_equal(d.len, 0);
    }
    assert_int_equal(
        skr_b64_decode(skr_span_str("Zm9v\nYmFy\r\n"), SKR_B64_STD | SKR_B64_SKIP_WS, &d), SKR_OK);
    assert_memory_equal(d.ptr, "foobar", 6);
    assert_int_equal(skr_b64_decode(skr_span_str("Zm9v"), 0, &d), SKR_E_INVALID_ARG);
    /* STRICT (RFC 7515 §2): no padding, no unused bits; url-only messages name the alphabet */
    assert_int_equal(skr_b64_decode(skr_span_str("Zg"), SKR_B64_URL | SKR_B64_STRICT, &d), SKR_OK);
    assert_int_equal(skr_b64_decode(skr_span_str("Zg=="), SKR_B64_URL | SKR_B64_STRICT, &d),
                     SKR_E_MALFORMED);
    assert_non_null(strstr(skr_err_msg(), "padding"));
    assert_int_equal(skr_b64_decode(skr_span_str("Zh"), SKR_B64_URL | SKR_B64_STRICT, &d),
                     SKR_E_MALFORMED);
    assert_non_null(strstr(skr_err_msg(), "non-canonical"));
    assert_int_equal(skr_b64_decode(skr_span_str("Zh"), SKR_B64_URL, &d), SKR_OK);
    assert_int_equal(skr_b64_decode(skr_span_str("Z+"), SKR_B64_URL, &d), SKR_E_MALFORMED);
    assert_non_null(strstr(skr_err_msg(), "standard base64 alphabet"));
    assert_int_equal(skr_b64_decode(skr_span_str("Z!"), SKR_B64_URL, &d), SKR_E_MALFORMED);
    assert_non_null(strstr(skr_err_msg(), "invalid base64url character at offset 1"));
    skr_buf_reset(&d);
    /* output limit */
    skr_buf_done(&d);
    skr_buf_init(&d, 2);
    assert_int_equal(skr_b64_decode(skr_span_str("Zm9v"), SKR_B64_STD, &d), SKR_E_TOO_LARGE);
}

static void
test_hex(void **state)
{
    static const uint8_t bytes[] = { 0x00, 0xab, 0xCD, 0xff };
    _cleanup_(skr_buf_donep) struct skr_buf b = { 0 };
    uint8_t out[4];
    char fmt[9];

    (void)state;
    skr_buf_init(&b, 64);
    assert_int_equal(skr_hex_encode(skr_span_make(bytes, 4), false, &b), SKR_OK);
    assert_memory_equal(b.ptr, "00abcdff", 8);
    skr_buf_reset(&b);
    assert_int_equal(skr_hex_encode(skr_span_make(bytes, 4), true, &b), SKR_OK);
    assert_memory_equal(b.ptr, "00ABCDFF", 8);
    skr_buf_reset(&b);
    assert_int_equal(skr_hex_decode(skr_span_str("00AbcD\nff"), true, &b), SKR_OK);
    assert_int_equal(b.len, 4);
    assert_memory_equal(b.ptr, bytes, 4);
    skr_buf_reset(&b);
    assert_int_equal(skr_hex_decode(skr_span_str("00ab\ncd"), false, &b), SKR_E_MALFORMED);
    assert_int_equal(skr_hex_decode(skr_span_str("abc"), false, &b), SKR_E_MALFORMED);
    assert_int_equal(skr_hex_decode(skr_span_str("0g"), false, &b), SKR_E_MALFORMED);
    assert_int_equal(b.len, 0);
    assert_int_equal(skr_hex_decode_fixed(skr_span_str("00abcdff"), out, 4), SKR_OK);
    assert_memory_equal(out, bytes, 4);
    assert_int_equal(skr_hex_decode_fixed(skr_span_str("00abcd"), out, 4), SKR_E_MALFORMED);
    assert_int_equal(skr_hex_decode_fixed(skr_span_str("00abcdff0"), out, 4), SKR_E_MALFORMED);
    assert_int_equal(skr_hex_decode_fixed(skr_span_str("00abcdfz"), out, 4), SKR_E_MALFORMED);
    skr_hex_fmt(bytes, 4, fmt);
    assert_string_equal(fmt, "00abcdff");
}

static void
test_json(void **state)
{
    _cleanup_(json_decrefp) json_t *v = NULL;
    const char *s = NULL;
    json_t *o = NULL;
    bool flag = false;
    uint64_t n = 0;

    (void)state;
    assert_int_equal(skr_json_parse_object(skr_span_str("{\"a\":\"x\",\"b\":true,\"c\":7,"
                                                        "\"d\":\"12\",\"e\":{},\"f\":-1}"),
                                           1024, "doc", &v),
                     SKR_OK);
    assert_int_equal(skr_json_get_str(v, "a", &s), SKR_OK);
    assert_string_equal(s, "x");
    assert_int_equal(skr_json_get_bool(v, "b", &flag), SKR_OK);
    assert_true(flag);
    assert_int_equal(skr_json_get_u64(v, "c", &n), SKR_OK);
    assert_int_equal(n, 7);
    assert_int_equal(skr_json_get_u64(v, "d", &n), SKR_OK);
    assert_int_equal(n, 12);
    assert_int_equal(skr_json_get_obj(v, "e", &o), SKR_OK);
    assert_int_equal(skr_json_get_u64(v, "f", &n), SKR_E_MALFORMED);
    assert_non_null(strstr(skr_err_msg(), "'f'"));
    assert_int_equal(skr_json_get_str(v, "b", &s), SKR_E_MALFORMED);
    assert_non_null(strstr(skr_err_msg(), "field 'b': expected a string"));
    assert_int_equal(skr_json_get_str(v, "zz", &s), SKR_E_MALFORMED);
    assert_non_null(strstr(skr_err_msg(), "field 'zz' is missing"));
    assert_int_equal(skr_json_opt_str(v, "zz", &s), SKR_OK);
    assert_null(s);
    assert_int_equal(skr_json_get_arr(v, "a", &o), SKR_E_MALFORMED);
}

static void
test_json_negative(void **state)
{
    char deep[200];
    json_t *v = NULL;

    (void)state;
    assert_int_equal(skr_json_parse(skr_span_str("{\"a\":1,\"a\":2}"), 100, &v), SKR_E_MALFORMED);
    assert_int_equal(skr_json_parse(skr_span_str("{\"a\":\"\\u0000\"}"), 100, &v), SKR_E_MALFORMED);
    assert_int_equal(skr_json_parse(skr_span_str("{\"a\":1"), 100, &v), SKR_E_MALFORMED);
    assert_non_null(strstr(skr_err_msg(), "invalid JSON"));
    assert_int_equal(skr_json_parse(skr_span_str("{\"a\":1}"), 3, &v), SKR_E_TOO_LARGE);
    assert_int_equal(skr_json_parse_object(skr_span_str("[1]"), 100, "THIM JSON", &v),
                     SKR_E_MALFORMED);
    assert_non_null(strstr(skr_err_msg(), "THIM JSON: expected a JSON object"));
    memset(deep, '[', sizeof(deep));
    assert_int_equal(skr_json_parse(skr_span_make(deep, sizeof(deep)), 1000, &v), SKR_E_TOO_LARGE);
    /* brackets inside strings do not count as depth */
    char s[300] = "[\"";
    memset(s + 2, '[', 200);
    memcpy(s + 202, "\"]", 3);
    assert_int_equal(skr_json_parse(skr_span_str(s), 1000, &v), SKR_OK);
    json_decref(v);
}

static void
test_json_build(void **state)
{
    static const uint8_t bytes[] = { 0xde, 0xad };
    _cleanup_(json_decrefp) json_t *o = json_object();
    _cleanup_(skr_buf_donep) struct skr_buf b = { 0 };

    (void)state;
    skr_buf_init(&b, 64);
    assert_int_equal(skr_json_set_hex(o, "h", bytes, 2), SKR_OK);
    assert_int_equal(skr_json_set(o, "n", json_integer(5)), SKR_OK);
    assert_int_equal(skr_json_set(o, "x", NULL), SKR_E_NOMEM);
    assert_int_equal(skr_json_dump(o, JSON_COMPACT | JSON_SORT_KEYS, &b), SKR_OK);
    assert_int_equal(b.len, strlen("{\"h\":\"dead\",\"n\":5}"));
    assert_memory_equal(b.ptr, "{\"h\":\"dead\",\"n\":5}", b.len);
    skr_buf_done(&b);
    skr_buf_init(&b, 4);
    assert_int_equal(skr_json_dump(o, JSON_COMPACT, &b), SKR_E_TOO_LARGE);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_err),          cmocka_unit_test(test_buf_limits),
        cmocka_unit_test(test_buf_grow),     cmocka_unit_test(test_rd),
        cmocka_unit_test(test_put_get),      cmocka_unit_test(test_parse_u64),
        cmocka_unit_test(test_files),        cmocka_unit_test(test_parse_hex_u64),
        cmocka_unit_test(test_b64_rfc4648),  cmocka_unit_test(test_b64_alphabets),
        cmocka_unit_test(test_b64_negative), cmocka_unit_test(test_hex),
        cmocka_unit_test(test_json),         cmocka_unit_test(test_json_negative),
        cmocka_unit_test(test_json_build),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
