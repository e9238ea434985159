/*
 * snp_dev.c - the SEV-SNP report sources behind snp_dev.h (PROTOCOLS.md §3):
 *   tsm        configfs-tsm report entries (§3.3), generation-checked against racing writers
 *   sev-guest  /dev/sev-guest SNP_GET_REPORT / SNP_GET_EXT_REPORT (§3.1, <linux/sev-guest.h>)
 *   sev        the ACI 5.15 /dev/sev driver (§3.2), whose struct no system header carries
 *   emulated   the software platform of snp_emu.c, only when named
 * Every backend hands back the bare 1184-byte report; the MSG_REPORT_RSP header is read with
 * a checked reader, never cast.
 */
#include "snp_dev.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sev-guest.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "buf.h"
#include "err.h"
#include "hex.h"
#include "skr_limits.h"
#include "snp_certs.h"
#include "snp_emu.h"
#include "snp_report.h"

#define DEV_PATH_MAX 4096u
#define DEV_PAGE     4096u
/* The certificate buffer first offered to SNP_GET_EXT_REPORT: the kernel's own default
 * (SEV_FW_BLOB_MAX_SIZE, 4 pages). */
#define DEV_CERTS_INITIAL (4u * DEV_PAGE)
/* SNP_GUEST_VMM_ERR_BUSY: the host throttles guest requests; a few short waits are enough
 * (newer kernels retry internally). */
#define DEV_BUSY_RETRIES  5
#define DEV_BUSY_SLEEP_NS (100L * 1000 * 1000)
/* MSG_REPORT_RSP: u32 status, u32 report_size, 24 reserved, then the report (SNP ABI 56860,
 * "MSG_REPORT_RSP Message Structure"). */
#define DEV_RSP_HEADER_LEN 32u

/* ---- kernel ABI pins (PROTOCOLS.md §3.1) ----------------------------------------------- */

_Static_assert(sizeof(struct snp_report_req) == 96, "snp_report_req is 96 bytes");
_Static_assert(offsetof(struct snp_report_req, user_data) == 0, "user_data at 0");
_Static_assert(offsetof(struct snp_report_req, vmpl) == 64, "vmpl at 64");
_Static_assert(offsetof(struct snp_report_req, rsvd) == 68, "rsvd at 68");
_Static_assert(sizeof(struct snp_report_resp) == 4000, "snp_report_resp is 4000 bytes");
_Static_assert(sizeof(struct snp_guest_request_ioctl) == 32, "snp_guest_request_ioctl is 32");
_Static_assert(offsetof(struct snp_guest_request_ioctl, msg_version) == 0, "msg_version at 0");
_Static_assert(offsetof(struct snp_guest_request_ioctl, req_data) == 8, "req_data at 8");
_Static_assert(offsetof(struct snp_guest_request_ioctl, resp_data) == 16, "resp_data at 16");
_Static_assert(offsetof(struct snp_guest_request_ioctl, exitinfo2) == 24, "exitinfo2 at 24");
_Static_assert(offsetof(struct snp_ext_report_req, data) == 0, "data at 0");
_Static_assert(offsetof(struct snp_ext_report_req, certs_address) == 96, "certs_address at 96");
_Static_assert(offsetof(struct snp_ext_report_req, certs_len) == 104, "certs_len at 104");
_Static_assert(SNP_GET_REPORT == 0xC0205300UL, "SNP_GET_REPORT request code");
_Static_assert(SNP_GET_EXT_REPORT == 0xC0205302UL, "SNP_GET_EXT_REPORT request code");
_Static_assert(DEV_RSP_HEADER_LEN + SKR_SNP_REPORT_LEN <= sizeof(struct snp_report_resp),
               "the response buffer holds a report");

/* ---- the ACI 5.15 /dev/sev ABI (PROTOCOLS.md §3.2; AMD psp-sev-guest.h) ----------------- */

struct skr_sev_legacy_req {
    uint8_t req_msg_type;
    uint8_t rsp_msg_type;
    uint8_t msg_version;
    uint16_t request_len;
    uint64_t request_uaddr;
    uint16_t response_len;
    uint64_t response_uaddr;
    uint32_t error;
};

_Static_assert(sizeof(struct skr_sev_legacy_req) == 40, "legacy request is 40 bytes");
_Static_assert(offsetof(struct skr_sev_legacy_req, rsp_msg_type) == 1, "rsp_msg_type at 1");
_Static_assert(offsetof(struct skr_sev_legacy_req, msg_version) == 2, "msg_version at 2");
_Static_assert(offsetof(struct skr_sev_legacy_req, request_len) == 4, "request_len at 4");
_Static_assert(offsetof(struct skr_sev_legacy_req, request_uaddr) == 8, "request_uaddr at 8");
_Static_assert(offsetof(struct skr_sev_legacy_req, response_len) == 16, "response_len at 16");
_Static_assert(offsetof(struct skr_sev_legacy_req, response_uaddr) == 24, "response_uaddr at 24");
_Static_assert(offsetof(struct skr_sev_legacy_req, error) == 32, "error at 32");

#define SEV_SNP_GUEST_MSG_REPORT _IOWR('S', 0x1, struct skr_sev_legacy_req)
/* SCC SNP_GET_REPORT_IOCTL_REQ_CODE_5 */
_Static_assert(SEV_SNP_GUEST_MSG_REPORT == 3223868161UL, "SEV_SNP_GUEST_MSG_REPORT code");

#define SEV_MSG_REPORT_REQ  5u
#define SEV_MSG_REPORT_RSP  6u
#define SEV_LEGACY_RESP_LEN 1280u

/* ---- the device object ---------------------------------------------------------------- */

struct dev_ops {
    const char *name;
    skr_err (*get_report)(struct skr_snp_dev *d, const uint8_t report_data[64], uint32_t vmpl,
                          uint8_t report[SKR_SNP_REPORT_LEN], struct skr_buf *certs);
    void (*free)(struct skr_snp_dev *d);
};

struct skr_snp_dev {
    const struct dev_ops *ops;
    char *path;
    int fd;
    skr_ioctl_fn ioctl_fn;
    struct skr_snp_emu *emu;
    void (*tsm_hook)(const char *entry_dir, void *arg);
    void *tsm_hook_arg;
};

static int
default_ioctl(int fd, unsigned long req, void *arg)
{
    return ioctl(fd, req, arg);
}

static void
sleep_busy(void)
{
    struct timespec ts = { .tv_sec = 0, .tv_nsec = DEV_BUSY_SLEEP_NS };

    (void)nanosleep(&ts, NULL);
}

/* Reads MSG_REPORT_RSP from resp and copies the report out. */
static skr_err
read_report_rsp(struct skr_span resp, uint8_t report[SKR_SNP_REPORT_LEN])
{
    struct skr_rd rd;
    uint32_t status;
    uint32_t report_size;

    skr_rd_init(&rd, resp);
    TRY(skr_rd_u32le(&rd, &status));
    TRY(skr_rd_u32le(&rd, &report_size));
    TRY(skr_rd_skip(&rd, DEV_RSP_HEADER_LEN - 8));
    if (status != 0) {
        FAILF(SKR_E_DEVICE, "SNP firmware status 0x%x (0x16 INVALID_PARAM, 0x27 INVALID_KEY)",
              status);
    }
    if (report_size != SKR_SNP_REPORT_LEN) {
        FAILF(SKR_E_DEVICE, "SNP firmware returned report_size %u, expected %u", report_size,
              SKR_SNP_REPORT_LEN);
    }
    return skr_rd_copy(&rd, report, SKR_SNP_REPORT_LEN);
}

static void
fd_free(struct skr_snp_dev *d)
{
    if (d->fd >= 0) {
        (void)close(d->fd);
        d->fd = -1;
    }
}

/* ---- certificate tables --------------------------------------------------------------- */

/* Appends the used part of a host certificate table to out: 24 * (n + 1) header bytes plus
 * every certificate (GHCB 56421 §4.1.8.1). An all-zero buffer means the host gave none. */
static skr_err
append_cert_table(struct skr_span blob, struct skr_buf *out)
{
    struct skr_cert_table t;
    size_t end;

    if (skr_span_is_zero(blob)) {
        return SKR_OK;
    }
    TRY(skr_cert_table_parse(blob, &t));
    end = 24 * (t.n + 1);
    for (size_t i = 0; i < t.n; i++) {
        size_t off = (size_t)(t.entries[i].der.ptr - blob.ptr);
        size_t last = off + t.entries[i].der.len;

        if (last > end) {
            end = last;
        }
    }
    ENSURE(end <= blob.len, SKR_E_INTERNAL, "certificate table end past its buffer");
    return skr_buf_append(out, blob.ptr, end);
}

/* ---- sev-guest (Linux >= 6.0) --------------------------------------------------------- */

struct ioctl_result {
    int rc;
    int err;
    uint32_t fw_error;
    uint32_t vmm_error;
};

/* Issues one guest request, waiting out VMM BUSY a bounded number of times. */
static struct ioctl_result
guest_request(struct skr_snp_dev *d, unsigned long code, struct snp_guest_request_ioctl *io)
{
    struct ioctl_result res = { 0 };

    for (int attempt = 0;; attempt++) {
        io->exitinfo2 = 0;
        errno = 0;
        res.rc = d->ioctl_fn(d->fd, code, io);
        res.err = errno;
        /* exitinfo2: bits 31:0 firmware error, bits 63:32 VMM error (sev-guest.h). */
        res.fw_error = (uint32_t)(io->exitinfo2 & 0xffffffffu);
        res.vmm_error = (uint32_t)(io->exitinfo2 >> 32);
        if (res.rc == 0 || res.vmm_error != SNP_GUEST_VMM_ERR_BUSY || attempt >= DEV_BUSY_RETRIES) {
            return res;
        }
        sleep_busy();
    }
}

static skr_err
ioctl_failed(const struct skr_snp_dev *d, const char *what, const struct ioctl_result *res)
{
    FAILF(SKR_E_DEVICE, "%s on %s failed: %s (fw_error 0x%x, vmm_error 0x%x)", what, d->path,
          strerror(res->err != 0 ? res->err : EIO), res->fw_error, res->vmm_error);
}

static void
report_req_init(struct snp_report_req *req, const uint8_t report_data[64], uint32_t vmpl)
{
    *req = (struct snp_report_req){ .vmpl = vmpl };
    memcpy(req->user_data, report_data, sizeof(req->user_data));
}

static skr_err
sev_guest_plain(struct skr_snp_dev *d, const uint8_t report_data[64], uint32_t vmpl,
                uint8_t report[SKR_SNP_REPORT_LEN])
{
    struct snp_report_req req;
    struct snp_report_resp resp = { 0 };
    struct snp_guest_request_ioctl io = {
        .msg_version = 1,
        .req_data = (uint64_t)(uintptr_t)&req,
        .resp_data = (uint64_t)(uintptr_t)&resp,
    };
    struct ioctl_result res;

    report_req_init(&req, report_data, vmpl);
    res = guest_request(d, SNP_GET_REPORT, &io);
    if (res.rc != 0) {
        return ioctl_failed(d, "SNP_GET_REPORT", &res);
    }
    return read_report_rsp(skr_span_make(resp.data, sizeof(resp.data)), report);
}

static void
freep_aligned(uint8_t **p)
{
    free(*p);
}

static skr_err
certs_alloc(size_t len, uint8_t **ret)
{
    void *p = NULL;

    if (posix_memalign(&p, DEV_PAGE, len) != 0) {
        FAIL(SKR_E_NOMEM, "cannot allocate the certificate buffer");
    }
    memset(p, 0, len);
    *ret = p;
    return SKR_OK;
}

/* The size the kernel asked for, rounded up to pages and bounded. */
static skr_err
certs_needed(uint32_t asked, size_t have, size_t *ret)
{
    size_t len = ((size_t)asked + DEV_PAGE - 1) / DEV_PAGE * DEV_PAGE;

    if (len > SKR_MAX_EXT_CERTS_BYTES) {
        FAILF(SKR_E_TOO_LARGE, "host certificate table needs %u bytes, more than the %u allowed",
              asked, SKR_MAX_EXT_CERTS_BYTES);
    }
    if (len <= have) {
        FAILF(SKR_E_DEVICE, "SNP_GET_EXT_REPORT: buffer of %zu bytes too small, kernel asks %u",
              have, asked);
    }
    *ret = len;
    return SKR_OK;
}

static skr_err
sev_guest_ext(struct skr_snp_dev *d, const uint8_t report_data[64], uint32_t vmpl,
              uint8_t report[SKR_SNP_REPORT_LEN], struct skr_buf *certs)
{
    struct snp_ext_report_req ext = { 0 };
    struct snp_report_resp resp = { 0 };
    struct snp_guest_request_ioctl io = {
        .msg_version = 1,
        .req_data = (uint64_t)(uintptr_t)&ext,
        .resp_data = (uint64_t)(uintptr_t)&resp,
    };
    _cleanup_(freep_aligned) uint8_t *buf = NULL;
    size_t len = DEV_CERTS_INITIAL;
    struct ioctl_result res;

    report_req_init(&ext.data, report_data, vmpl);
    for (int attempt = 0;; attempt++) {
        free(buf);
        buf = NULL;
        TRY(certs_alloc(len, &buf));
        ext.certs_address = (uint64_t)(uintptr_t)buf;
        ext.certs_len = (uint32_t)len;
        res = guest_request(d, SNP_GET_EXT_REPORT, &io);
        if (res.rc == 0) {
            break;
        }
        /* Too small: the kernel wrote the size it needs into certs_len; retry once. */
        if (res.vmm_error != SNP_GUEST_VMM_ERR_INVALID_LEN || attempt > 0) {
            return ioctl_failed(d, "SNP_GET_EXT_REPORT", &res);
        }
        TRY(certs_needed(ext.certs_len, len, &len));
    }
    TRY(read_report_rsp(skr_span_make(resp.data, sizeof(resp.data)), report));
    return append_cert_table(skr_span_make(buf, len), certs);
}

static skr_err
sev_guest_get_report(struct skr_snp_dev *d, const uint8_t report_data[64], uint32_t vmpl,
                     uint8_t report[SKR_SNP_REPORT_LEN], struct skr_buf *certs)
{
    if (certs == NULL) {
        return sev_guest_plain(d, report_data, vmpl, report);
    }
    return sev_guest_ext(d, report_data, vmpl, report, certs);
}

static const struct dev_ops sev_guest_ops = {
    .name = "sev-guest",
    .get_report = sev_guest_get_report,
    .free = fd_free,
};

/* ---- sev (ACI 5.15) ------------------------------------------------------------------- */

static skr_err
sev_get_report(struct skr_snp_dev *d, const uint8_t report_data[64], uint32_t vmpl,
               uint8_t report[SKR_SNP_REPORT_LEN], struct skr_buf *certs)
{
    struct snp_report_req req;
    uint8_t resp[SEV_LEGACY_RESP_LEN] = { 0 };
    struct skr_sev_legacy_req io = {
        .req_msg_type = SEV_MSG_REPORT_REQ,
        .rsp_msg_type = SEV_MSG_REPORT_RSP,
        .msg_version = 1,
        .request_len = sizeof(req),
        .request_uaddr = (uint64_t)(uintptr_t)&req,
        .response_len = sizeof(resp),
        .response_uaddr = (uint64_t)(uintptr_t)resp,
    };
    int rc;

    (void)certs; /* this driver has no extended report: certificates stay empty */
    report_req_init(&req, report_data, vmpl);
    errno = 0;
    rc = d->ioctl_fn(d->fd, SEV_SNP_GUEST_MSG_REPORT, &io);
    if (rc != 0) {
        int err = errno != 0 ? errno : EIO;

        FAILF(SKR_E_DEVICE, "SEV_SNP_GUEST_MSG_REPORT on %s failed: %s (fw_error 0x%x)", d->path,
              strerror(err), io.error);
    }
    return read_report_rsp(skr_span_make(resp, sizeof(resp)), report);
}

static const struct dev_ops sev_ops = {
    .name = "sev",
    .get_report = sev_get_report,
    .free = fd_free,
};

/* ---- configfs-tsm (Linux >= 6.7) ------------------------------------------------------ */

static skr_err
tsm_path(const char *entry, const char *attr, struct skr_buf *b, const char **ret)
{
    skr_buf_reset(b);
    TRY(skr_buf_printf(b, "%s/%s", entry, attr));
    return skr_buf_cstr(b, ret);
}

/* Reads an attribute; *ret_present is false when the file does not exist. */
static skr_err
tsm_read(const char *entry, const char *attr, size_t max, struct skr_buf *out, bool *ret_present)
{
    _cleanup_(skr_buf_donep) struct skr_buf pb = { 0 };
    const char *path;
    skr_err e;

    skr_buf_init(&pb, DEV_PATH_MAX);
    TRY(tsm_path(entry, attr, &pb, &path));
    skr_buf_init(out, max);
    e = skr_read_file(path, out);
    if (e == SKR_E_NOT_FOUND) {
        *ret_present = false;
        return SKR_OK;
    }
    if (e != SKR_OK) {
        char why[256];

        (void)snprintf(why, sizeof(why), "%s", skr_err_msg());
        FAILF(e == SKR_E_TOO_LARGE ? e : SKR_E_DEVICE, "configfs-tsm: cannot read %s: %s", attr,
              why);
    }
    *ret_present = true;
    return SKR_OK;
}

/* Writes an attribute (which configfs created); *ret_present is false when it does not
 * exist. */
static skr_err
tsm_write(const char *entry, const char *attr, struct skr_span data, bool *ret_present)
{
    _cleanup_(skr_buf_donep) struct skr_buf pb = { 0 };
    const char *path;
    ssize_t n;
    int fd;
    int err;

    skr_buf_init(&pb, DEV_PATH_MAX);
    TRY(tsm_path(entry, attr, &pb, &path));
    fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno == ENOENT) {
        *ret_present = false;
        return SKR_OK;
    }
    if (fd < 0) {
        FAILF(SKR_E_DEVICE, "configfs-tsm: cannot open %s: %s", attr, strerror(errno));
    }
    /* configfs attributes take one write(2); a short write is a failure. */
    do {
        n = write(fd, data.ptr, data.len);
    } while (n < 0 && errno == EINTR);
    err = errno;
    (void)close(fd);
    if (n < 0) {
        FAILF(SKR_E_DEVICE, "configfs-tsm: cannot write %s: %s", attr, strerror(err));
    }
    ENSURE((size_t)n == data.len, SKR_E_DEVICE, "configfs-tsm: short write");
    *ret_present = true;
    return SKR_OK;
}

static skr_err
tsm_generation(const char *entry, uint64_t *ret)
{
    _cleanup_(skr_buf_donep) struct skr_buf b = { 0 };
    struct skr_span s;
    bool present;

    TRY(tsm_read(entry, "generation", 32, &b, &present));
    ENSURE(present, SKR_E_DEVICE, "configfs-tsm entry has no generation");
    s = skr_buf_span(&b);
    while (s.len > 0 && (s.ptr[s.len - 1] == '\n' || s.ptr[s.len - 1] == ' ')) {
        s.len--;
    }
    if (skr_parse_u64(s, false, 0, UINT64_MAX, ret) != SKR_OK) {
        FAIL(SKR_E_DEVICE, "configfs-tsm generation is not a number");
    }
    return SKR_OK;
}

static skr_err
tsm_check_provider(const char *entry)
{
    _cleanup_(skr_buf_donep) struct skr_buf b = { 0 };
    struct skr_span s;
    bool present;

    TRY(tsm_read(entry, "provider", 64, &b, &present));
    if (!present) {
        return SKR_OK;
    }
    s = skr_buf_span(&b);
    while (s.len > 0 && (s.ptr[s.len - 1] == '\n' || s.ptr[s.len - 1] == ' ')) {
        s.len--;
    }
    if (!skr_span_eq_str(s, "sev_guest")) {
        FAILF(SKR_E_UNSUPPORTED, "configfs-tsm provider is \"%.*s\", not sev_guest (not SEV-SNP)",
              (int)s.len, (const char *)s.ptr);
    }
    return SKR_OK;
}

static void
tsm_call_hook(const struct skr_snp_dev *d, const char *entry)
{
    if (d->tsm_hook != NULL) {
        d->tsm_hook(entry, d->tsm_hook_arg);
    }
}

/* Requests the report through the entry; *ret_raced is set when generation moved by more
 * than our own writes, i.e. another process wrote to the entry meanwhile. */
static skr_err
tsm_request(struct skr_snp_dev *d, const char *entry, const uint8_t report_data[64], uint32_t vmpl,
            uint8_t report[SKR_SNP_REPORT_LEN], struct skr_buf *aux, bool *ret_raced)
{
    _cleanup_(skr_buf_donep) struct skr_buf out = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf pb = { 0 };
    const char *path;
    char level[16];
    uint64_t gen0;
    uint64_t gen1;
    uint64_t writes = 0;
    bool present;

    tsm_call_hook(d, entry);
    skr_buf_init(&pb, DEV_PATH_MAX);
    TRY(tsm_path(entry, "outblob", &pb, &path));
    if (access(path, F_OK) != 0) {
        /* configfs creates the attributes with the directory; a plain one has none. */
        FAILF(SKR_E_DEVICE,
              "configfs-tsm entry has no outblob: is %s a configfs-tsm report "
              "directory?",
              d->path);
    }
    TRY(tsm_check_provider(entry));
    TRY(tsm_generation(entry, &gen0));
    (void)snprintf(level, sizeof(level), "%u\n", vmpl);
    TRY(tsm_write(entry, "privlevel", skr_span_str(level), &present));
    if (present) {
        writes++;
    } else if (vmpl != 0) {
        FAILF(SKR_E_UNSUPPORTED, "configfs-tsm has no privlevel: cannot request VMPL %u", vmpl);
    }
    TRY(tsm_write(entry, "inblob", skr_span_make(report_data, 64), &present));
    ENSURE(present, SKR_E_DEVICE, "configfs-tsm entry has no inblob");
    writes++;
    tsm_call_hook(d, entry);
    /* Room for more than a report, so that an oversized outblob is reported as such. */
    TRY(tsm_read(entry, "outblob", 4 * SKR_SNP_REPORT_LEN, &out, &present));
    ENSURE(present, SKR_E_DEVICE, "configfs-tsm entry has no outblob");
    if (out.len != SKR_SNP_REPORT_LEN) {
        FAILF(SKR_E_DEVICE, "configfs-tsm outblob has %zu bytes, expected a %u-byte report",
              out.len, SKR_SNP_REPORT_LEN);
    }
    if (aux != NULL) {
        TRY(tsm_read(entry, "auxblob", SKR_MAX_CERT_TABLE_BYTES, aux, &present));
    }
    TRY(tsm_generation(entry, &gen1));
    *ret_raced = gen1 != gen0 + writes;
    memcpy(report, out.ptr, SKR_SNP_REPORT_LEN);
    return SKR_OK;
}

static skr_err
tsm_entry_name(const struct skr_snp_dev *d, struct skr_buf *b, const char **ret)
{
    uint8_t rnd[8];
    char hex[2 * sizeof(rnd) + 1];

    TRY_OSSL(RAND_bytes(rnd, sizeof(rnd)), SKR_E_INTERNAL, "RAND_bytes failed");
    skr_hex_fmt(rnd, sizeof(rnd), hex);
    skr_buf_reset(b);
    TRY(skr_buf_printf(b, "%s/skr-%ld-%s", d->path, (long)getpid(), hex));
    return skr_buf_cstr(b, ret);
}

static skr_err
tsm_attempt(struct skr_snp_dev *d, const uint8_t report_data[64], uint32_t vmpl,
            uint8_t report[SKR_SNP_REPORT_LEN], struct skr_buf *certs, bool *ret_raced)
{
    _cleanup_(skr_buf_donep) struct skr_buf name = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf aux = { 0 };
    const char *entry;
    skr_err e;

    skr_buf_init(&name, DEV_PATH_MAX);
    TRY(tsm_entry_name(d, &name, &entry));
    if (mkdir(entry, 0700) != 0) {
        FAILF(SKR_E_DEVICE, "cannot create configfs-tsm entry %s: %s", entry, strerror(errno));
    }
    e = tsm_request(d, entry, report_data, vmpl, report, certs != NULL ? &aux : NULL, ret_raced);
    /* On configfs the attribute files go with the directory. Nothing is unlinked here: on a
     * plain filesystem (tests) rmdir fails on the files the test put there, and is left so. */
    (void)rmdir(entry);
    TRY(e);
    if (certs != NULL && !*ret_raced) {
        TRY(append_cert_table(skr_buf_span(&aux), certs));
    }
    return SKR_OK;
}

static skr_err
tsm_get_report(struct skr_snp_dev *d, const uint8_t report_data[64], uint32_t vmpl,
               uint8_t report[SKR_SNP_REPORT_LEN], struct skr_buf *certs)
{
    for (int attempt = 0; attempt <= SKR_TSM_MAX_RETRIES; attempt++) {
        bool raced = false;

        TRY(tsm_attempt(d, report_data, vmpl, report, certs, &raced));
        if (!raced) {
            return SKR_OK;
        }
    }
    FAILF(SKR_E_DEVICE,
          "configfs-tsm generation changed under us %d times: another process is writing to "
          "the report entries",
          SKR_TSM_MAX_RETRIES + 1);
}

static void
nothing_free(struct skr_snp_dev *d)
{
    (void)d;
}

static const struct dev_ops tsm_ops = {
    .name = "tsm",
    .get_report = tsm_get_report,
    .free = nothing_free,
};

/* ---- emulated ------------------------------------------------------------------------- */

static skr_err
emu_get_report(struct skr_snp_dev *d, const uint8_t report_data[64], uint32_t vmpl,
               uint8_t report[SKR_SNP_REPORT_LEN], struct skr_buf *certs)
{
    _cleanup_(skr_buf_donep) struct skr_buf out = { 0 };

    skr_buf_init(&out, SKR_SNP_REPORT_LEN);
    TRY(skr_snp_emu_report(d->emu, report_data, vmpl, &out));
    ENSURE(out.len == SKR_SNP_REPORT_LEN, SKR_E_INTERNAL, "emulated report has the wrong size");
    if (certs != NULL) {
        TRY(skr_snp_emu_cert_table(d->emu, certs));
    }
    memcpy(report, out.ptr, SKR_SNP_REPORT_LEN);
    return SKR_OK;
}

static void
emu_free(struct skr_snp_dev *d)
{
    skr_snp_emu_free(d->emu);
    d->emu = NULL;
}

static const struct dev_ops emu_ops = {
    .name = "emulated",
    .get_report = emu_get_report,
    .free = emu_free,
};

/* ---- spec, detection, open ------------------------------------------------------------ */

static const char spec_forms[] = "auto, tsm[:DIR], sev-guest[:DEV], sev[:DEV] or emulated:DIR";

skr_err
skr_snp_dev_parse_spec(const char *spec, struct skr_snp_dev_cfg *ret)
{
    static const struct {
        const char *name;
        enum skr_snp_dev_kind kind;
    } kinds[] = {
        { "auto", SKR_SNP_DEV_AUTO },           { "tsm", SKR_SNP_DEV_TSM },
        { "sev-guest", SKR_SNP_DEV_SEV_GUEST }, { "sev", SKR_SNP_DEV_SEV },
        { "emulated", SKR_SNP_DEV_EMULATED },
    };
    const char *colon;
    size_t name_len;

    ENSURE(spec != NULL && ret != NULL, SKR_E_INVALID_ARG, "NULL argument");
    colon = strchr(spec, ':');
    name_len = colon != NULL ? (size_t)(colon - spec) : strlen(spec);
    for (size_t i = 0; i < SKR_ARRAY_LEN(kinds); i++) {
        const char *path = colon != NULL ? colon + 1 : NULL;

        if (strlen(kinds[i].name) != name_len || strncmp(spec, kinds[i].name, name_len) != 0) {
            continue;
        }
        if (kinds[i].kind == SKR_SNP_DEV_AUTO && path != NULL) {
            FAIL(SKR_E_INVALID_ARG, "SNP device \"auto\" takes no path");
        }
        if (kinds[i].kind == SKR_SNP_DEV_EMULATED && path == NULL) {
            FAIL(SKR_E_INVALID_ARG, "SNP device \"emulated\" needs a directory: emulated:DIR");
        }
        if (path != NULL && path[0] == '\0') {
            FAILF(SKR_E_INVALID_ARG, "SNP device \"%s\": empty path after ':'", kinds[i].name);
        }
        *ret = (struct skr_snp_dev_cfg){ .kind = kinds[i].kind, .path = path };
        return SKR_OK;
    }
    FAILF(SKR_E_INVALID_ARG, "unknown SNP device \"%.64s\": expected %s", spec, spec_forms);
}

static skr_err
sysroot_path(const struct skr_snp_dev_cfg *cfg, const char *def, struct skr_buf *b,
             const char **ret)
{
    const char *root = cfg->sysroot != NULL ? cfg->sysroot : "";

    skr_buf_reset(b);
    TRY(skr_buf_printf(b, "%s%s", root, def));
    return skr_buf_cstr(b, ret);
}

static const char tsm_default[] = "/sys/kernel/config/tsm/report";
static const char sev_guest_default[] = "/dev/sev-guest";
static const char sev_default[] = "/dev/sev";

static skr_err
detect(const struct skr_snp_dev_cfg *cfg, enum skr_snp_dev_kind *ret)
{
    _cleanup_(skr_buf_donep) struct skr_buf b = { 0 };
    const char *path;
    struct stat st;

    skr_buf_init(&b, DEV_PATH_MAX);
    TRY(sysroot_path(cfg, tsm_default, &b, &path));
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        *ret = SKR_SNP_DEV_TSM;
        return SKR_OK;
    }
    TRY(sysroot_path(cfg, sev_guest_default, &b, &path));
    if (access(path, F_OK) == 0) {
        *ret = SKR_SNP_DEV_SEV_GUEST;
        return SKR_OK;
    }
    TRY(sysroot_path(cfg, sev_default, &b, &path));
    if (access(path, F_OK) == 0) {
        *ret = SKR_SNP_DEV_SEV;
        return SKR_OK;
    }
    FAIL(SKR_E_NOT_FOUND, "not an SEV-SNP guest: no /dev/sev-guest, /dev/sev or configfs-tsm");
}

static skr_err
set_path(struct skr_snp_dev *d, const struct skr_snp_dev_cfg *cfg, const char *def)
{
    _cleanup_(skr_buf_donep) struct skr_buf b = { 0 };
    const char *path = cfg->path;

    skr_buf_init(&b, DEV_PATH_MAX);
    if (path == NULL) {
        ENSURE(def != NULL, SKR_E_INVALID_ARG, "emulated:DIR needs a directory");
        TRY(sysroot_path(cfg, def, &b, &path));
    }
    d->path = strdup(path);
    ENSURE(d->path != NULL, SKR_E_NOMEM, "out of memory");
    return SKR_OK;
}

static skr_err
open_node(struct skr_snp_dev *d)
{
    d->fd = open(d->path, O_RDWR | O_CLOEXEC);
    if (d->fd < 0) {
        FAILF(errno == ENOENT ? SKR_E_NOT_FOUND : SKR_E_DEVICE, "cannot open %s: %s", d->path,
              strerror(errno));
    }
    return SKR_OK;
}

static skr_err
open_tsm(struct skr_snp_dev *d)
{
    struct stat st;

    if (stat(d->path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        FAILF(SKR_E_NOT_FOUND, "configfs-tsm report directory %s not found", d->path);
    }
    return SKR_OK;
}

static skr_err
open_kind(struct skr_snp_dev *d, const struct skr_snp_dev_cfg *cfg, enum skr_snp_dev_kind kind)
{
    switch (kind) {
    case SKR_SNP_DEV_TSM:
        d->ops = &tsm_ops;
        TRY(set_path(d, cfg, tsm_default));
        return open_tsm(d);
    case SKR_SNP_DEV_SEV_GUEST:
        d->ops = &sev_guest_ops;
        TRY(set_path(d, cfg, sev_guest_default));
        return open_node(d);
    case SKR_SNP_DEV_SEV:
        d->ops = &sev_ops;
        TRY(set_path(d, cfg, sev_default));
        return open_node(d);
    case SKR_SNP_DEV_EMULATED:
        d->ops = &emu_ops;
        TRY(set_path(d, cfg, NULL));
        return skr_snp_emu_open(d->path, &d->emu);
    default:
        FAIL(SKR_E_INVALID_ARG, "unknown SNP device kind");
    }
}

skr_err
skr_snp_dev_open(const struct skr_snp_dev_cfg *cfg, struct skr_snp_dev **ret)
{
    _cleanup_(skr_snp_dev_freep) struct skr_snp_dev *d = NULL;
    enum skr_snp_dev_kind kind;

    ENSURE(cfg != NULL && ret != NULL, SKR_E_INVALID_ARG, "NULL argument");
    kind = cfg->kind;
    if (kind == SKR_SNP_DEV_AUTO) {
        TRY(detect(cfg, &kind));
    }
    d = calloc(1, sizeof(*d));
    ENSURE(d != NULL, SKR_E_NOMEM, "out of memory");
    d->fd = -1;
    d->ioctl_fn = default_ioctl;
    d->ops = &tsm_ops;
    TRY(open_kind(d, cfg, kind));
    *ret = TAKE_PTR(d);
    return SKR_OK;
}

void
skr_snp_dev_free(struct skr_snp_dev *d)
{
    if (d == NULL) {
        return;
    }
    d->ops->free(d);
    free(d->path);
    free(d);
}

const char *
skr_snp_dev_name(const struct skr_snp_dev *d)
{
    return d->ops->name;
}

skr_err
skr_snp_dev_get_report(struct skr_snp_dev *d, const uint8_t report_data[64], uint32_t vmpl,
                       struct skr_buf *ret_report, struct skr_buf *ret_certs)
{
    _cleanup_(skr_buf_donep) struct skr_buf certs = { 0 };
    uint8_t report[SKR_SNP_REPORT_LEN];

    ENSURE(d != NULL && report_data != NULL && ret_report != NULL, SKR_E_INVALID_ARG,
           "NULL argument");
    ENSURE(vmpl <= 3, SKR_E_INVALID_ARG, "VMPL must be 0..3");
    /* Backends fill locals; the caller's buffers only see a complete result. */
    skr_buf_init(&certs, SKR_MAX_CERT_TABLE_BYTES);
    TRY(d->ops->get_report(d, report_data, vmpl, report, ret_certs != NULL ? &certs : NULL));
    TRY(skr_buf_append(ret_report, report, sizeof(report)));
    if (ret_certs != NULL) {
        TRY(skr_buf_append_span(ret_certs, skr_buf_span(&certs)));
    }
    return SKR_OK;
}

void
skr_snp_dev_set_ioctl(struct skr_snp_dev *d, skr_ioctl_fn fn)
{
    d->ioctl_fn = fn != NULL ? fn : default_ioctl;
}

void
skr_snp_dev_set_tsm_hook(struct skr_snp_dev *d, void (*hook)(const char *entry_dir, void *arg),
                         void *arg)
{
    d->tsm_hook = hook;
    d->tsm_hook_arg = arg;
}
