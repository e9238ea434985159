/*
 * test_snp_dev.c - the SNP device backends without SNP hardware:
 *   - spec parsing and auto-detection against a temporary sysroot;
 *   - sev-guest and sev through a fake ioctl that decodes the request exactly as the kernel
 *     does (codes, msg_version, pointers, VMPL, user data, lengths) and answers with reports
 *     signed by an emulated platform, plus every error the kernel and firmware can give;
 *   - tsm through a hook that plays configfs on a plain directory (attribute files,
 *     generation counter, outblob derived from what was written to inblob);
 *   - the emulated backend.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/sev-guest.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "buf.h"
#include "limits.h"
#include "snp_certs.h"
#include "snp_dev.h"
#include "snp_emu.h"
#include "snp_report.h"

static char root[64];
static char plat_dir[128];
static char node[128];
static char tsm_root[128];
static struct skr_snp_emu *emu;
static struct skr_buf emu_table;

/* ---- setup ---------------------------------------------------------------------------- */

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void
rm_tree(const char *path)
{
    (void)nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void
touch(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

    assert_true(fd >= 0);
    close(fd);
}

static void
put_file(const char *dir, const char *name, const void *p, size_t n)
{
    char path[512];
    int fd;

    (void)snprintf(path, sizeof(path), "%s/%s", dir, name);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, p, n), (ssize_t)n);
    close(fd);
}

static size_t
get_file(const char *dir, const char *name, void *p, size_t cap)
{
    char path[512];
    ssize_t n;
    int fd;

    (void)snprintf(path, sizeof(path), "%s/%s", dir, name);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return 0;
    }
    n = read(fd, p, cap);
    close(fd);
    assert_true(n >= 0);
    return (size_t)n;
}

static int
setup(void **state)
{
    (void)state;
    (void)snprintf(root, sizeof(root), "/tmp/skr-test-dev-XXXXXX");
    if (mkdtemp(root) == NULL) {
        return -1;
    }
    (void)snprintf(plat_dir, sizeof(plat_dir), "%s/plat", root);
    (void)snprintf(node, sizeof(node), "%s/node", root);
    (void)snprintf(tsm_root, sizeof(tsm_root), "%s/tsm", root);
    if (skr_snp_emu_create(plat_dir, NULL) != SKR_OK ||
        skr_snp_emu_open(plat_dir, &emu) != SKR_OK) {
        fprintf(stderr, "emulated platform: %s\n", skr_err_detail());
        return -1;
    }
    skr_buf_init(&emu_table, SKR_MAX_CERT_TABLE_BYTES);
    if (skr_snp_emu_cert_table(emu, &emu_table) != SKR_OK) {
        return -1;
    }
    touch(node);
    return mkdir(tsm_root, 0700);
}

static int
teardown(void **state)
{
    (void)state;
    skr_snp_emu_free(emu);
    skr_buf_done(&emu_table);
    rm_tree(root);
    return 0;
}

static void
fill_rd(uint8_t rd[64], uint8_t seed)
{
    for (size_t i = 0; i < 64; i++) {
        rd[i] = (uint8_t)(seed + i * 3);
    }
}

static void
emu_report(const uint8_t rd[64], uint32_t vmpl, uint8_t out[SKR_SNP_REPORT_LEN])
{
    struct skr_buf b;

    skr_buf_init(&b, SKR_SNP_REPORT_LEN);
    assert_int_equal(skr_snp_emu_report(emu, rd, vmpl, &b), SKR_OK);
    memcpy(out, b.ptr, SKR_SNP_REPORT_LEN);
    skr_buf_done(&b);
}

static void
check_report(const struct skr_buf *rep, const uint8_t rd[64], uint32_t vmpl)
{
    struct skr_snp_report r;

    assert_int_equal(rep->len, SKR_SNP_REPORT_LEN);
    assert_int_equal(skr_snp_report_parse(skr_buf_span(rep), &r), SKR_OK);
    assert_memory_equal(r.report_data, rd, 64);
    assert_int_equal(r.vmpl, vmpl);
    assert_memory_equal(r.chip_id, skr_snp_emu_params(emu)->chip_id, 64);
}

/* ---- spec parsing --------------------------------------------------------------------- */

static void
test_parse_spec(void **state)
{
    static const struct {
        const char *spec;
        enum skr_snp_dev_kind kind;
        const char *path;
    } ok[] = {
        { "auto", SKR_SNP_DEV_AUTO, NULL },
        { "tsm", SKR_SNP_DEV_TSM, NULL },
        { "tsm:/x/report", SKR_SNP_DEV_TSM, "/x/report" },
        { "sev-guest", SKR_SNP_DEV_SEV_GUEST, NULL },
        { "sev-guest:/dev/x", SKR_SNP_DEV_SEV_GUEST, "/dev/x" },
        { "sev", SKR_SNP_DEV_SEV, NULL },
        { "sev:/dev/y", SKR_SNP_DEV_SEV, "/dev/y" },
        { "emulated:/tmp/e", SKR_SNP_DEV_EMULATED, "/tmp/e" },
        { "emulated:rel:dir", SKR_SNP_DEV_EMULATED, "rel:dir" },
    };
    static const char *const bad[] = {
        "",     "emulated",  "emulated:", "tsm:",     "sev:",        "sev-guest:", "auto:/x",
        "Auto", "sev_guest", "sevguest",  "sev-gues", "tsmx",        "fake",       " sev",
        "sev ", ":/dev/sev", "tdx",       "emul:/x",  "sev-guest-x",
    };
    struct skr_snp_dev_cfg cfg;

    (void)state;
    for (size_t i = 0; i < SKR_ARRAY_LEN(ok); i++) {
        cfg = (struct skr_snp_dev_cfg){ .kind = SKR_SNP_DEV_SEV, .path = "junk" };
        assert_int_equal(skr_snp_dev_parse_spec(ok[i].spec, &cfg), SKR_OK);
        assert_int_equal(cfg.kind, ok[i].kind);
        if (ok[i].path == NULL) {
            assert_null(cfg.path);
        } else {
            assert_string_equal(cfg.path, ok[i].path);
        }
        assert_null(cfg.sysroot);
    }
    for (size_t i = 0; i < SKR_ARRAY_LEN(bad); i++) {
        cfg = (struct skr_snp_dev_cfg){ .kind = SKR_SNP_DEV_SEV, .path = "keep" };
        assert_int_equal(skr_snp_dev_parse_spec(bad[i], &cfg), SKR_E_INVALID_ARG);
        /* ret is untouched on failure */
        assert_int_equal(cfg.kind, SKR_SNP_DEV_SEV);
        assert_string_equal(cfg.path, "keep");
    }
    assert_int_equal(skr_snp_dev_parse_spec("fake", &cfg), SKR_E_INVALID_ARG);
    assert_non_null(strstr(skr_err_msg(), "emulated:DIR"));
    assert_non_null(strstr(skr_err_msg(), "sev-guest[:DEV]"));
}

/* ---- auto-detection ------------------------------------------------------------------- */

static void
test_auto_detect(void **state)
{
    char sysroot[256];
    char path[512];
    struct skr_snp_dev_cfg cfg;
    struct skr_snp_dev *d = NULL;

    (void)state;
    (void)snprintf(sysroot, sizeof(sysroot), "%s/sysroot", root);
    assert_int_equal(mkdir(sysroot, 0700), 0);
    cfg = (struct skr_snp_dev_cfg){ .kind = SKR_SNP_DEV_AUTO, .sysroot = sysroot };

    assert_int_equal(skr_snp_dev_open(&cfg, &d), SKR_E_NOT_FOUND);
    assert_string_equal(skr_err_msg(),
                        "not an SEV-SNP guest: no /dev/sev-guest, /dev/sev or configfs-tsm");
    assert_null(d);

    /* A dev/ directory and a tsm path that is a file, not a directory, are not enough. */
    (void)snprintf(path, sizeof(path), "%s/dev", sysroot);
    assert_int_equal(mkdir(path, 0700), 0);
    (void)snprintf(path, sizeof(path), "%s/sys", sysroot);
    assert_int_equal(mkdir(path, 0700), 0);
    assert_int_equal(skr_snp_dev_open(&cfg, &d), SKR_E_NOT_FOUND);

    (void)snprintf(path, sizeof(path), "%s/dev/sev", sysroot);
    touch(path);
    assert_int_equal(skr_snp_dev_open(&cfg, &d), SKR_OK);
    assert_string_equal(skr_snp_dev_name(d), "sev");
    skr_snp_dev_free(d);
    d = NULL;

    (void)snprintf(path, sizeof(path), "%s/dev/sev-guest", sysroot);
    touch(path);
    assert_int_equal(skr_snp_dev_open(&cfg, &d), SKR_OK);
    assert_string_equal(skr_snp_dev_name(d), "sev-guest");
    skr_snp_dev_free(d);
    d = NULL;

    (void)snprintf(path, sizeof(path), "%s/sys/kernel", sysroot);
    assert_int_equal(mkdir(path, 0700), 0);
    (void)snprintf(path, sizeof(path), "%s/sys/kernel/config", sysroot);
    assert_int_equal(mkdir(path, 0700), 0);
    (void)snprintf(path, sizeof(path), "%s/sys/kernel/config/tsm", sysroot);
    assert_int_equal(mkdir(path, 0700), 0);
    (void)snprintf(path, sizeof(path), "%s/sys/kernel/config/tsm/report", sysroot);
    touch(path); /* a file: not configfs-tsm */
    assert_int_equal(skr_snp_dev_open(&cfg, &d), SKR_OK);
    assert_string_equal(skr_snp_dev_name(d), "sev-guest");
    skr_snp_dev_free(d);
    d = NULL;
    assert_int_equal(unlink(path), 0);
    assert_int_equal(mkdir(path, 0700), 0);
    assert_int_equal(skr_snp_dev_open(&cfg, &d), SKR_OK);
    assert_string_equal(skr_snp_dev_name(d), "tsm");
    skr_snp_dev_free(d);
    d = NULL;

    /* Explicit kinds honour the sysroot for their defaults and never fall back. */
    (void)snprintf(path, sizeof(path), "%s/dev/sev", sysroot);
    assert_int_equal(unlink(path), 0);
    cfg.kind = SKR_SNP_DEV_SEV;
    assert_int_equal(skr_snp_dev_open(&cfg, &d), SKR_E_NOT_FOUND);
    assert_null(d);
    cfg = (struct skr_snp_dev_cfg){ .kind = SKR_SNP_DEV_SEV_GUEST, .path = "/nonexistent/sg" };
    assert_int_equal(skr_snp_dev_open(&cfg, &d), SKR_E_NOT_FOUND);
    cfg = (struct skr_snp_dev_cfg){ .kind = SKR_SNP_DEV_TSM, .path = "/nonexistent/tsm" };
    assert_int_equal(skr_snp_dev_open(&cfg, &d), SKR_E_NOT_FOUND);
    cfg = (struct skr_snp_dev_cfg){ .kind = SKR_SNP_DEV_EMULATED };
    assert_int_equal(skr_snp_dev_open(&cfg, &d), SKR_E_INVALID_ARG);
    cfg = (struct skr_snp_dev_cfg){ .kind = SKR_SNP_DEV_EMULATED, .path = "/nonexistent/e" };
    assert_int_equal(skr_snp_dev_open(&cfg, &d), SKR_E_NOT_FOUND);
    assert_null(d);
}

/* ---- the fake kernel for sev-guest and sev -------------------------------------------- */

struct fake {
    int calls;
    uint8_t rd[64];
    uint32_t vmpl;
    uint32_t fw_status;
    uint32_t report_size; /* 0: 1184 */
    int fail_errno;       /* the ioctl fails with this errno and exitinfo2 */
    uint64_t exitinfo2;
    int busy;                 /* answer VMM BUSY this many times first */
    uint32_t need_certs;      /* EXT: certs_len below this gets INVALID_LEN */
    bool no_certs;            /* EXT: the host has no certificates */
    int64_t invalid_len_grow; /* >= 0: always INVALID_LEN, asking for certs_len + this */
    uint32_t last_certs_len;
};

static struct fake fk;

static void
fake_reset(uint8_t seed, uint32_t vmpl)
{
    fk = (struct fake){ .vmpl = vmpl, .invalid_len_grow = -1 };
    fill_rd(fk.rd, seed);
}

static void
check_report_req(const struct snp_report_req *r)
{
    static const uint8_t zero[28] = { 0 };

    assert_memory_equal(r->user_data, fk.rd, 64);
    assert_int_equal(r->vmpl, fk.vmpl);
    assert_memory_equal(r->rsvd, zero, sizeof(zero));
}

/* MSG_REPORT_RSP into a response buffer of cap bytes. */
static void
fill_rsp(uint8_t *resp, size_t cap, uint32_t vmpl)
{
    assert_true(cap >= 32 + SKR_SNP_REPORT_LEN);
    memset(resp, 0, cap);
    skr_put_u32le(resp, fk.fw_status);
    skr_put_u32le(resp + 4, fk.report_size != 0 ? fk.report_size : SKR_SNP_REPORT_LEN);
    if (fk.fw_status == 0) {
        emu_report(fk.rd, vmpl, resp + 32);
    }
}

static int
fake_sev_guest(int fd, unsigned long req, void *arg)
{
    struct snp_guest_request_ioctl *io = arg;
    struct snp_ext_report_req *ext = NULL;
    const struct snp_report_req *r;

    fk.calls++;
    assert_true(fd >= 0);
    assert_true(req == SNP_GET_REPORT || req == SNP_GET_EXT_REPORT);
    assert_int_equal(io->msg_version, 1);
    assert_int_equal(io->exitinfo2, 0);
    assert_true(io->req_data != 0 && io->resp_data != 0);
    if (req == SNP_GET_EXT_REPORT) {
        ext = (struct snp_ext_report_req *)(uintptr_t)io->req_data;
        r = &ext->data;
        /* the kernel requires a page-aligned, page-multiple buffer */
        assert_int_equal(ext->certs_address % 4096, 0);
        assert_int_equal(ext->certs_len % 4096, 0);
        assert_true(ext->certs_len > 0);
        fk.last_certs_len = ext->certs_len;
    } else {
        r = (const struct snp_report_req *)(uintptr_t)io->req_data;
    }
    check_report_req(r);
    if (fk.busy > 0) {
        fk.busy--;
        io->exitinfo2 = (uint64_t)SNP_GUEST_VMM_ERR_BUSY << 32;
        errno = EAGAIN;
        return -1;
    }
    if (fk.fail_errno != 0) {
        io->exitinfo2 = fk.exitinfo2;
        errno = fk.fail_errno;
        return -1;
    }
    if (ext != NULL && fk.invalid_len_grow >= 0) {
        ext->certs_len += (uint32_t)fk.invalid_len_grow;
        io->exitinfo2 = (uint64_t)SNP_GUEST_VMM_ERR_INVALID_LEN << 32;
        errno = EINVAL;
        return -1;
    }
    if (ext != NULL && ext->certs_len < fk.need_certs) {
        ext->certs_len = fk.need_certs;
        io->exitinfo2 = (uint64_t)SNP_GUEST_VMM_ERR_INVALID_LEN << 32;
        errno = EINVAL;
        return -1;
    }
    fill_rsp(((struct snp_report_resp *)(uintptr_t)io->resp_data)->data,
             sizeof(struct snp_report_resp), r->vmpl);
    if (ext != NULL && !fk.no_certs) {
        assert_true(emu_table.len <= ext->certs_len);
        memcpy((void *)(uintptr_t)ext->certs_address, emu_table.ptr, emu_table.len);
    }
    return 0;
}

static struct skr_snp_dev *
open_ioctl_dev(enum skr_snp_dev_kind kind, skr_ioctl_fn fn)
{
    struct skr_snp_dev_cfg cfg = { .kind = kind, .path = node };
    struct skr_snp_dev *d = NULL;

    assert_int_equal(skr_snp_dev_open(&cfg, &d), SKR_OK);
    skr_snp_dev_set_ioctl(d, fn);
    return d;
}

static void
test_sev_guest_report(void **state)
{
    struct skr_snp_dev *d = open_ioctl_dev(SKR_SNP_DEV_SEV_GUEST, fake_sev_guest);
    struct skr_buf rep;

    (void)state;
    assert_string_equal(skr_snp_dev_name(d), "sev-guest");
    skr_buf_init(&rep, 8192);
    fake_reset(1, 0);
    assert_int_equal(skr_snp_dev_get_report(d, fk.rd, 0, &rep, NULL), SKR_OK);
    assert_int_equal(fk.calls, 1);
    check_report(&rep, fk.rd, 0);

    /* VMPL 3, appended after what is already in the buffer */
    fake_reset(2, 3);
    assert_int_equal(skr_snp_dev_get_report(d, fk.rd, 3, &rep, NULL), SKR_OK);
    assert_int_equal(rep.len, 2 * SKR_SNP_REPORT_LEN);
    {
        struct skr_snp_report r;

        assert_int_equal(skr_snp_report_parse(
                             skr_span_make(rep.ptr + SKR_SNP_REPORT_LEN, SKR_SNP_REPORT_LEN), &r),
                         SKR_OK);
        assert_int_equal(r.vmpl, 3);
        assert_memory_equal(r.report_data, fk.rd, 64);
    }
    /* VMPL 4 does not exist; the device is not asked. */
    fk.calls = 0;
    assert_int_equal(skr_snp_dev_get_report(d, fk.rd, 4, &rep, NULL), SKR_E_INVALID_ARG);
    assert_int_equal(fk.calls, 0);
    skr_buf_done(&rep);
    skr_snp_dev_free(d);
}

static void
test_sev_guest_ext(void **state)
{
    struct skr_snp_dev *d = open_ioctl_dev(SKR_SNP_DEV_SEV_GUEST, fake_sev_guest);
    struct skr_buf rep;
    struct skr_buf certs;
    struct skr_cert_table t;

    (void)state;
    skr_buf_init(&rep, 8192);
    skr_buf_init(&certs, SKR_MAX_CERT_TABLE_BYTES);

    fake_reset(3, 1);
    assert_int_equal(skr_snp_dev_get_report(d, fk.rd, 1, &rep, &certs), SKR_OK);
    assert_int_equal(fk.calls, 1);
    assert_int_equal(fk.last_certs_len, 4 * 4096);
    check_report(&rep, fk.rd, 1);
    /* only the used part of the 16 KiB buffer */
    assert_int_equal(certs.len, emu_table.len);
    assert_memory_equal(certs.ptr, emu_table.ptr, emu_table.len);
    assert_int_equal(skr_cert_table_parse(skr_buf_span(&certs), &t), SKR_OK);
    assert_int_equal(t.n, 3);

    /* The host supplied no certificates: an all-zero buffer. */
    skr_buf_reset(&rep);
    skr_buf_reset(&certs);
    fake_reset(4, 0);
    fk.no_certs = true;
    assert_int_equal(skr_snp_dev_get_report(d, fk.rd, 0, &rep, &certs), SKR_OK);
    check_report(&rep, fk.rd, 0);
    assert_int_equal(certs.len, 0);

    /* Too small: INVALID_LEN with the needed size, one retry with that size. */
    skr_buf_reset(&rep);
    fake_reset(5, 0);
    fk.need_certs = 5 * 4096;
    assert_int_equal(skr_snp_dev_get_report(d, fk.rd, 0, &rep, &certs), SKR_OK);
    assert_int_equal(fk.calls, 2);
    assert_int_equal(fk.last_certs_len, 5 * 4096);
    check_report(&rep, fk.rd, 0);
    assert_int_equal(certs.len, emu_table.len);

    /* A needed size that is not a page multiple is rounded up. */
    skr_buf_reset(&rep);
    skr_buf_reset(&certs);
    fake_reset(6, 0);
    fk.need_certs = 5 * 4096 + 100;
    assert_int_equal(skr_snp_dev_get_report(d, fk.rd, 0, &rep, &certs), SKR_OK);
    assert_int_equal(fk.last_certs_len, 6 * 4096);

    /* More than SKR_MAX_EXT_CERTS_BYTES: refused without a second request. */
    skr_buf_reset(&rep);
    skr_buf_reset(&certs);
    fake_reset(7, 0);
    fk.need_certs = SKR_MAX_EXT_CERTS_BYTES + 4096;
    assert_int_equal(skr_snp_dev_get_report(d, fk.rd, 0, &rep, &certs), SKR_E_TOO_LARGE);
    assert_int_equal(fk.calls, 1);
    assert_int_equal(rep.len, 0);
    assert_int_equal(certs.len, 0);

    /* Exactly the maximum is fine. */
    fake_reset(8, 0);
    fk.need_certs = SKR_MAX_EXT_CERTS_BYTES;
    assert_int_equal(skr_snp_dev_get_report(d, fk.rd, 0, &rep, &certs), SKR_OK);
    assert_int_equal(fk.last_certs_len, SKR_MAX_EXT_CERTS_BYTES);
    skr_buf_done(&rep);
    skr_buf_done(&certs);
    skr_snp_dev_free(d);
}

static void
test_sev_guest_errors(void **state)
{
    struct skr_snp_dev *d = open_ioctl_dev(SKR_SNP_DEV_SEV_GUEST, fake_sev_guest);
    struct skr_buf rep;
    struct skr_buf certs;

    (void)state;
    skr_buf_init(&rep, 8192);
    skr_buf_init(&certs, SKR_MAX_CERT_TABLE_BYTES);

    fake_reset(1, 0);
    fk.fw_status = 0x16;
    assert_int_equal(skr_snp_dev_get_report(d, fk.rd, 0, &rep, NULL), SKR_E_DEVICE);
    assert_non_null(strstr(skr_err_msg(), "firmware status 0x16"));

    fake_reset(1, 0);
    fk.report_size = 1000;
    assert_int_equal(skr_snp_dev_get_report(d, fk.rd, 0, &rep, NULL), SKR_E_DEVICE);
    assert_non_null(strstr(skr_err_msg(), "report_size 1000"));
    fake_reset(1, 0);
    fk.report_size = SKR_SNP_REPORT_LEN + 1;
    assert_int_equal(skr_snp_dev_get_report(d, fk.rd, 0, &rep, &certs), SKR_E_DEVICE);

    fake_reset(1, 0);
    fk.fail_errno = EIO;
    fk.exitinfo2 = 0x27;
    assert_int_equal(skr_snp_dev_get_report(d, fk.rd, 0, &rep, NULL), SKR_E_DEVICE);
    assert_non_null(strstr(skr_err_msg(), "fw_error 0x27"));
    assert_non_null(strstr(skr_err_msg(), "vmm_error 0x0"));
    assert_non_null(strstr(skr_err_msg(), strerror(EIO)));
    assert_int_equal(fk.calls, 1);

    /* An unknown VMM error on the extended request is not retried. */
    fake_reset(1, 0);
    fk.fail_errno = EINVAL;
    fk.exitinfo2 = (uint64_t)7 << 32 | 0x16;
    assert_int_equal(skr_snp_dev_get_report(d, fk.rd, 0, &rep, &certs), SKR_E_DEVICE);
    assert_non_null(strstr(skr_err_msg(), "vmm_error 0x7"));
    assert_non_null(strstr(skr_err_msg(), "SNP_GET_EXT_REPORT"));
    assert_int_equal(fk.calls, 1);

    /* BUSY is waited out a bounded number of times. */
    fake_reset(2, 0);
    fk.busy = 2;
    assert_int_equal(skr_snp_dev_get_report(d, fk.rd, 0, &rep, NULL), SKR_OK);
    assert_int_equal(fk.calls, 3);
    check_report(&rep, fk.rd, 0);
    fake_reset(2, 0);
    fk.busy = 1000;
    assert_int_equal(skr_snp_dev_get_report(d, fk.rd, 0, &rep, NULL), SKR_E_DEVICE);
    assert_true(fk.calls > 1 && fk.calls < 20);
    assert_non_null(strstr(skr_err_msg(), "vmm_error 0x2"));

    /* INVALID_LEN again after the retry: the kernel keeps asking for more; give up. */
    skr_buf_reset(&rep);
    fake_reset(3, 0);
    fk.invalid_len_grow = 4096;
    assert_int_equal(skr_snp_dev_get_report(d, fk.rd, 0, &rep, &certs), SKR_E_DEVICE);
    assert_int_equal(fk.calls, 2);
    assert_non_null(strstr(skr_err_msg(), "vmm_error 0x1"));
    /* INVALID_LEN without asking for more than was offered is a kernel bug: no retry. */
    fake_reset(3, 0);
    fk.invalid_len_grow = 0;
    assert_int_equal(skr_snp_dev_get_report(d, fk.rd, 0, &rep, &certs), SKR_E_DEVICE);
    assert_int_equal(fk.calls, 1);
    assert_int_equal(rep.len, 0);
    assert_int_equal(certs.len, 0);
    skr_buf_done(&rep);
    skr_buf_done(&certs);
    skr_snp_dev_free(d);
}

/* ---- the ACI 5.15 /dev/sev driver ----------------------------------------------------- */

/* The kernel's view of the request (PROTOCOLS.md §3.2), independent of lib/snp_dev.c. */
struct legacy_req {
    uint8_t req_msg_type;
    uint8_t rsp_msg_type;
    uint8_t msg_version;
    uint16_t request_len;
    uint64_t request_uaddr;
    uint16_t response_len;
    uint64_t response_uaddr;
    uint32_t error;
};
_Static_assert(sizeof(struct legacy_req) == 40, "legacy request layout");

static int
fake_sev(int fd, unsigned long req, void *arg)
{
    struct legacy_req *io = arg;

    fk.calls++;
    assert_true(fd >= 0);
    assert_int_equal(req, 3223868161UL);
    assert_int_equal(io->req_msg_type, 5);
    assert_int_equal(io->rsp_msg_type, 6);
    assert_int_equal(io->msg_version, 1);
    assert_int_equal(io->request_len, 96);
    assert_int_equal(io->response_len, 1280);
    assert_true(io->request_uaddr != 0 && io->response_uaddr != 0);
    check_report_req((const struct snp_report_req *)(uintptr_t)io->request_uaddr);
    if (fk.fail_errno != 0) {
        io->error = (uint32_t)fk.exitinfo2;
        errno = fk.fail_errno;
        return -1;
    }
    fill_rsp((uint8_t *)(uintptr_t)io->response_uaddr, io->response_len, fk.vmpl);
    return 0;
}

static void
test_sev_legacy(void **state)
{
    struct skr_snp_dev *d = open_ioctl_dev(SKR_SNP_DEV_SEV, fake_sev);
    struct skr_buf rep;
    struct skr_buf certs;

    (void)state;
    assert_string_equal(skr_snp_dev_name(d), "sev");
    skr_buf_init(&rep, 8192);
    skr_buf_init(&certs, SKR_MAX_CERT_TABLE_BYTES);
    fake_reset(9, 2);
    assert_int_equal(skr_snp_dev_get_report(d, fk.rd, 2, &rep, &certs), SKR_OK);
    assert_int_equal(fk.calls, 1);
    check_report(&rep, fk.rd, 2);
    assert_int_equal(certs.len, 0); /* this driver has no extended report */

    skr_buf_reset(&rep);
    fake_reset(9, 0);
    fk.fw_status = 0x27;
    assert_int_equal(skr_snp_dev_get_report(d, fk.rd, 0, &rep, NULL), SKR_E_DEVICE);
    assert_non_null(strstr(skr_err_msg(), "0x27"));
    fake_reset(9, 0);
    fk.report_size = 0x4A8;
    assert_int_equal(skr_snp_dev_get_report(d, fk.rd, 0, &rep, NULL), SKR_E_DEVICE);
    fake_reset(9, 0);
    fk.fail_errno = EPERM;
    fk.exitinfo2 = 0x16;
    assert_int_equal(skr_snp_dev_get_report(d, fk.rd, 0, &rep, NULL), SKR_E_DEVICE);
    assert_non_null(strstr(skr_err_msg(), "fw_error 0x16"));
    assert_non_null(strstr(skr_err_msg(), strerror(EPERM)));
    assert_int_equal(rep.len, 0);
    skr_buf_done(&rep);
    skr_buf_done(&certs);
    skr_snp_dev_free(d);
}

/* The real ioctl(2) on a regular file fails cleanly (ENOTTY), proving the default path. */
static void
test_default_ioctl(void **state)
{
    struct skr_snp_dev *d = open_ioctl_dev(SKR_SNP_DEV_SEV_GUEST, NULL);
    struct skr_buf rep;
    uint8_t rd[64] = { 0 };

    (void)state;
    skr_buf_init(&rep, 8192);
    assert_int_equal(skr_snp_dev_get_report(d, rd, 0, &rep, NULL), SKR_E_DEVICE);
    assert_non_null(strstr(skr_err_msg(), strerror(ENOTTY)));
    assert_int_equal(rep.len, 0);
    skr_snp_dev_free(d);
    d = open_ioctl_dev(SKR_SNP_DEV_SEV, NULL);
    assert_int_equal(skr_snp_dev_get_report(d, rd, 0, &rep, NULL), SKR_E_DEVICE);
    skr_snp_dev_free(d);
    skr_buf_done(&rep);
}

/* ---- configfs-tsm --------------------------------------------------------------------- */

struct tsm_fake {
    int entries;  /* hook calls right after mkdir */
    int requests; /* hook calls after inblob */
    char last[512];
    const char *provider; /* NULL: no provider file */
    bool no_files;
    bool no_privlevel;
    bool no_auxblob;
    bool empty_auxblob;
    size_t outblob_len; /* 0: a real report */
    int extra_bumps;    /* a racing writer on every entry */
    int race_first;     /* ... or only on the first n entries */
};

static struct tsm_fake tf;

static void
tsm_fake_reset(void)
{
    tf = (struct tsm_fake){ .provider = "sev_guest\n" };
}

static void
tsm_setup_entry(const char *entry)
{
    if (tf.no_files) {
        return;
    }
    if (tf.provider != NULL) {
        put_file(entry, "provider", tf.provider, strlen(tf.provider));
    }
    put_file(entry, "generation", "0\n", 2);
    put_file(entry, "inblob", "", 0);
    put_file(entry, "outblob", "", 0);
    if (!tf.no_privlevel) {
        put_file(entry, "privlevel", "", 0);
    }
    if (!tf.no_auxblob) {
        put_file(entry, "auxblob", "", 0);
    }
}

/* What the kernel does once inblob is written: a report for exactly those bytes. */
static void
tsm_answer(const char *entry)
{
    uint8_t in[128];
    char level[16] = { 0 };
    uint8_t report[2 * SKR_SNP_REPORT_LEN] = { 0 };
    uint32_t vmpl = 0;
    unsigned gen;
    char text[16];
    size_t n;

    assert_int_equal(get_file(entry, "inblob", in, sizeof(in)), 64);
    n = get_file(entry, "privlevel", level, sizeof(level) - 1);
    gen = 1 + (n > 0 ? 1 : 0);
    if (n > 0) {
        assert_true(level[0] >= '0' && level[0] <= '3');
        assert_true(level[1] == '\n' || level[1] == '\0');
        vmpl = (uint32_t)(level[0] - '0');
    }
    if (tf.extra_bumps > 0 || tf.entries <= tf.race_first) {
        gen += 1;
    }
    (void)snprintf(text, sizeof(text), "%u\n", gen);
    put_file(entry, "generation", text, strlen(text));
    emu_report(in, vmpl, report);
    assert_true(tf.outblob_len <= sizeof(report));
    put_file(entry, "outblob", report, tf.outblob_len != 0 ? tf.outblob_len : SKR_SNP_REPORT_LEN);
    if (!tf.no_auxblob && !tf.empty_auxblob) {
        put_file(entry, "auxblob", emu_table.ptr, emu_table.len);
    }
}

static void
tsm_hook(const char *entry, void *arg)
{
    struct stat st;

    assert_ptr_equal(arg, &tf);
    assert_int_equal(stat(entry, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(strncmp(entry, tsm_root, strlen(tsm_root)), 0);
    if (strcmp(entry, tf.last) != 0) {
        (void)snprintf(tf.last, sizeof(tf.last), "%s", entry);
        tf.entries++;
        tsm_setup_entry(entry);
        return;
    }
    tf.requests++;
    tsm_answer(entry);
}

static struct skr_snp_dev *
open_tsm(void)
{
    struct skr_snp_dev_cfg cfg = { .kind = SKR_SNP_DEV_TSM, .path = tsm_root };
    struct skr_snp_dev *d = NULL;

    assert_int_equal(skr_snp_dev_open(&cfg, &d), SKR_OK);
    assert_string_equal(skr_snp_dev_name(d), "tsm");
    skr_snp_dev_set_tsm_hook(d, tsm_hook, &tf);
    return d;
}

/* Entries left in the tsm root: on configfs rmdir removes them with their attributes; on a
 * plain directory it can only remove empty ones. Counts them and cleans up. */
static int
tsm_leftovers(void)
{
    char cmd_dir[512];
    int n = 0;
    struct dirent *de;
    DIR *dir = opendir(tsm_root);

    assert_non_null(dir);
    while ((de = readdir(dir)) != NULL) {
        if (de->d_name[0] == '.') {
            continue;
        }
        assert_int_equal(strncmp(de->d_name, "skr-", 4), 0);
        (void)snprintf(cmd_dir, sizeof(cmd_dir), "%s/%s", tsm_root, de->d_name);
        rm_tree(cmd_dir);
        n++;
    }
    closedir(dir);
    return n;
}

static void
test_tsm_report(void **state)
{
    struct skr_snp_dev *d = open_tsm();
    struct skr_buf rep;
    struct skr_buf certs;
    uint8_t rd[64];

    (void)state;
    skr_buf_init(&rep, 8192);
    skr_buf_init(&certs, SKR_MAX_CERT_TABLE_BYTES);
    fill_rd(rd, 40);
    tsm_fake_reset();
    assert_int_equal(skr_snp_dev_get_report(d, rd, 2, &rep, &certs), SKR_OK);
    assert_int_equal(tf.entries, 1);
    assert_int_equal(tf.requests, 1);
    check_report(&rep, rd, 2);
    assert_int_equal(certs.len, emu_table.len);
    assert_memory_equal(certs.ptr, emu_table.ptr, emu_table.len);
    assert_int_equal(tsm_leftovers(), 1); /* non-empty on a plain fs */

    /* No certificates wanted: auxblob is not needed. */
    skr_buf_reset(&rep);
    tsm_fake_reset();
    tf.no_auxblob = true;
    assert_int_equal(skr_snp_dev_get_report(d, rd, 0, &rep, NULL), SKR_OK);
    check_report(&rep, rd, 0);
    (void)tsm_leftovers();

    /* auxblob absent or empty: no certificates. */
    skr_buf_reset(&rep);
    skr_buf_reset(&certs);
    tsm_fake_reset();
    tf.no_auxblob = true;
    assert_int_equal(skr_snp_dev_get_report(d, rd, 0, &rep, &certs), SKR_OK);
    assert_int_equal(certs.len, 0);
    (void)tsm_leftovers();
    skr_buf_reset(&rep);
    tsm_fake_reset();
    tf.empty_auxblob = true;
    assert_int_equal(skr_snp_dev_get_report(d, rd, 0, &rep, &certs), SKR_OK);
    assert_int_equal(certs.len, 0);
    (void)tsm_leftovers();

    /* No provider file (older kernels) is accepted. */
    skr_buf_reset(&rep);
    tsm_fake_reset();
    tf.provider = NULL;
    assert_int_equal(skr_snp_dev_get_report(d, rd, 1, &rep, NULL), SKR_OK);
    check_report(&rep, rd, 1);
    (void)tsm_leftovers();

    /* No privlevel: VMPL 0 works (generation moves by one write), others cannot be asked. */
    skr_buf_reset(&rep);
    tsm_fake_reset();
    tf.no_privlevel = true;
    assert_int_equal(skr_snp_dev_get_report(d, rd, 0, &rep, NULL), SKR_OK);
    check_report(&rep, rd, 0);
    (void)tsm_leftovers();
    tsm_fake_reset();
    tf.no_privlevel = true;
    assert_int_equal(skr_snp_dev_get_report(d, rd, 1, &rep, NULL), SKR_E_UNSUPPORTED);
    (void)tsm_leftovers();

    skr_buf_done(&rep);
    skr_buf_done(&certs);
    skr_snp_dev_free(d);
}

static void
test_tsm_race(void **state)
{
    struct skr_snp_dev *d = open_tsm();
    struct skr_buf rep;
    struct skr_buf certs;
    uint8_t rd[64];

    (void)state;
    skr_buf_init(&rep, 8192);
    skr_buf_init(&certs, SKR_MAX_CERT_TABLE_BYTES);
    fill_rd(rd, 50);

    /* One race, then a clean attempt in a fresh entry. */
    tsm_fake_reset();
    tf.race_first = 1;
    assert_int_equal(skr_snp_dev_get_report(d, rd, 0, &rep, &certs), SKR_OK);
    assert_int_equal(tf.entries, 2);
    check_report(&rep, rd, 0);
    assert_int_equal(certs.len, emu_table.len); /* once, not once per attempt */
    assert_int_equal(tsm_leftovers(), 2);

    /* A writer that always races: bounded retries, then DEVICE, nothing returned. */
    skr_buf_reset(&rep);
    skr_buf_reset(&certs);
    tsm_fake_reset();
    tf.extra_bumps = 1;
    assert_int_equal(skr_snp_dev_get_report(d, rd, 0, &rep, &certs), SKR_E_DEVICE);
    assert_non_null(strstr(skr_err_msg(), "generation"));
    assert_int_equal(tf.entries, SKR_TSM_MAX_RETRIES + 1);
    assert_int_equal(rep.len, 0);
    assert_int_equal(certs.len, 0);
    assert_int_equal(tsm_leftovers(), SKR_TSM_MAX_RETRIES + 1);
    skr_buf_done(&rep);
    skr_buf_done(&certs);
    skr_snp_dev_free(d);
}

static void
test_tsm_errors(void **state)
{
    struct skr_snp_dev *d = open_tsm();
    struct skr_buf rep;
    uint8_t rd[64];

    (void)state;
    skr_buf_init(&rep, 8192);
    fill_rd(rd, 60);

    tsm_fake_reset();
    tf.provider = "tdx_guest\n";
    assert_int_equal(skr_snp_dev_get_report(d, rd, 0, &rep, NULL), SKR_E_UNSUPPORTED);
    assert_non_null(strstr(skr_err_msg(), "tdx_guest"));
    assert_int_equal(tf.requests, 0);
    (void)tsm_leftovers();

    tsm_fake_reset();
    tf.outblob_len = 1000;
    assert_int_equal(skr_snp_dev_get_report(d, rd, 0, &rep, NULL), SKR_E_DEVICE);
    assert_non_null(strstr(skr_err_msg(), "1000 bytes"));
    (void)tsm_leftovers();

    tsm_fake_reset();
    tf.outblob_len = 32 + SKR_SNP_REPORT_LEN; /* a MSG_REPORT_RSP with its header */
    assert_int_equal(skr_snp_dev_get_report(d, rd, 0, &rep, NULL), SKR_E_DEVICE);
    assert_non_null(strstr(skr_err_msg(), "1216 bytes"));
    (void)tsm_leftovers();

    /* A plain directory where configfs should be: nothing appears in the new entry, and the
     * entry, being empty, is removed again. */
    tsm_fake_reset();
    tf.no_files = true;
    assert_int_equal(skr_snp_dev_get_report(d, rd, 0, &rep, NULL), SKR_E_DEVICE);
    assert_non_null(strstr(skr_err_msg(), "no outblob"));
    assert_int_equal(tf.entries, 1);
    assert_int_equal(tsm_leftovers(), 0);

    skr_snp_dev_set_tsm_hook(d, NULL, NULL);
    assert_int_equal(skr_snp_dev_get_report(d, rd, 0, &rep, NULL), SKR_E_DEVICE);
    assert_int_equal(tsm_leftovers(), 0);
    assert_int_equal(rep.len, 0);
    skr_buf_done(&rep);
    skr_snp_dev_free(d);
}

/* ---- emulated ------------------------------------------------------------------------- */

static void
test_emulated(void **state)
{
    struct skr_snp_dev_cfg cfg;
    struct skr_snp_dev *d = NULL;
    struct skr_buf rep;
    struct skr_buf certs;
    uint8_t rd[64];
    char spec[256];

    (void)state;
    (void)snprintf(spec, sizeof(spec), "emulated:%s", plat_dir);
    assert_int_equal(skr_snp_dev_parse_spec(spec, &cfg), SKR_OK);
    assert_int_equal(skr_snp_dev_open(&cfg, &d), SKR_OK);
    assert_string_equal(skr_snp_dev_name(d), "emulated");
    skr_buf_init(&rep, 8192);
    skr_buf_init(&certs, SKR_MAX_CERT_TABLE_BYTES);
    fill_rd(rd, 70);
    assert_int_equal(skr_snp_dev_get_report(d, rd, 1, &rep, &certs), SKR_OK);
    check_report(&rep, rd, 1);
    assert_int_equal(certs.len, emu_table.len);
    assert_memory_equal(certs.ptr, emu_table.ptr, emu_table.len);
    skr_buf_reset(&rep);
    assert_int_equal(skr_snp_dev_get_report(d, rd, 0, &rep, NULL), SKR_OK);
    check_report(&rep, rd, 0);
    skr_buf_done(&rep);
    skr_buf_done(&certs);
    skr_snp_dev_free(d);
    skr_snp_dev_free(NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_spec),       cmocka_unit_test(test_auto_detect),
        cmocka_unit_test(test_sev_guest_report), cmocka_unit_test(test_sev_guest_ext),
        cmocka_unit_test(test_sev_guest_errors), cmocka_unit_test(test_sev_legacy),
        cmocka_unit_test(test_default_ioctl),    cmocka_unit_test(test_tsm_report),
        cmocka_unit_test(test_tsm_race),         cmocka_unit_test(test_tsm_errors),
        cmocka_unit_test(test_emulated),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
