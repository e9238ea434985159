/*
 * skr-emu - local emulators for testing skr without Azure or SEV-SNP hardware.
 *
 *   skr-emu init DIR [options]   create the offline Azure stack's state in DIR (init.c)
 *   skr-emu serve ...            IMDS, MAA and Key Vault emulators (issue #3)
 *
 * Everything it creates is marked as emulated; skr only uses it when told to by name
 * (--snp-device emulated:DIR). Exit codes: 0 ok, 2 usage or input error, 3 failure.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "emu.h"
#include "err.h"

const char emu_usage_text[] =
    "usage: skr-emu init DIR [options]\n"
    "       skr-emu serve\n"
    "       skr-emu --help\n"
    "\n"
    "init creates everything the offline Azure stack needs in DIR. All of it is EMULATED: no\n"
    "real verifier trusts it, and skr uses it only when told to by name (e.g. 'skr report\n"
    "fetch --device emulated:DIR'). Private keys (*.key) are mode 0600.\n"
    "  ca.pem ca.key              CA, EC P-256, CN \"skr-emu CA\", 10 years\n"
    "  tls.pem tls.key            TLS server certificate from the CA (leaf then CA in tls.pem),\n"
    "                             EC P-256, SANs localhost, 127.0.0.1, ::1, serverAuth, 1 year\n"
    "  maa/signing.pem .key       MAA token signing key (RSA-2048) and its certificate\n"
    "  entra/signing.pem .key     Entra token signing key (RSA-2048) and its certificate\n"
    "  snp/                       the software SEV-SNP platform: emulated AMD ARK and ASK\n"
    "                             (RSA-4096, RSASSA-PSS), a VCEK (EC P-384, AMD extensions) and\n"
    "                             the launch state in platform.json; HOST_DATA is the SHA-256 of\n"
    "                             the security policy, as in ACI\n"
    "  security-context/          as ACI lays it out, each file standard base64:\n"
    "    security-policy-base64     the rego security policy\n"
    "    host-amd-cert-base64       THIM JSON: vcekCert, tcbm, certificateChain (ASK, ARK)\n"
    "    reference-info-base64      NOT Microsoft's COSE_Sign1 UVM endorsement (which cannot\n"
    "                               be made offline) but JSON {\"x-ms-sevsnpvm-guestsvn\",\n"
    "                               \"x-ms-sevsnpvm-launchmeasurement\", \"emulated\": true},\n"
    "                               read only by the MAA emulator\n"
    "  keys/store.json            an empty key store (keys/ is mode 0700)\n"
    "  emu.json                   tenant and managed identity GUIDs, the MAA and Entra key ids\n"
    "                             (RFC 7638 thumbprints); written last, it marks a complete DIR\n"
    "\n"
    "init options:\n"
    "  --policy FILE                 rego security policy (default: ACI's allow-all policy)\n"
    "  --product Milan|Genoa|Turin   processor generation (default Milan)\n"
    "  --report-version N            ATTESTATION_REPORT version 2..5 (default 3)\n"
    "  --policy-hex HEX              guest POLICY (default 0x3001f)\n"
    "  --host-data HEX               HOST_DATA, 32 bytes, instead of the policy's SHA-256 (it\n"
    "                                then does not match the security policy: a warning)\n"
    "  --measurement HEX             MEASUREMENT, 48 bytes (default random)\n"
    "  --tcb HEX16                   TCB in the THIM tcbm form (default per product)\n"
    "  --chip-id HEX                 CHIP_ID, 64 bytes (Turin: 8; default random)\n"
    "  --force                       replace an existing DIR, key store included\n"
    "  -h, --help                    this text\n";

int
emu_usage_error(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "skr-emu: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'skr-emu --help'.\n");
    return EMU_EXIT_USAGE;
}

int
emu_report_err(skr_err e, const char *what)
{
    fprintf(stderr, "skr-emu: %s: %s: %s\n", what, skr_err_str(e), skr_err_msg());
    return EMU_EXIT_FAIL;
}

int
main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(emu_usage_text, stderr);
        return EMU_EXIT_USAGE;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        fputs(emu_usage_text, stdout);
        return EMU_EXIT_OK;
    }
    if (strcmp(argv[1], "init") == 0) {
        return emu_cmd_init(argc - 1, argv + 1);
    }
    if (strcmp(argv[1], "serve") == 0) {
        fprintf(stderr, "skr-emu serve: not implemented yet (the IMDS, MAA and Key Vault "
                        "emulators arrive with issue #3)\n");
        return EMU_EXIT_USAGE;
    }
    return emu_usage_error("unknown command \"%s\"", argv[1]);
}
