/*
 * skr-emu - local emulators for testing skr without Azure or SEV-SNP hardware.
 *
 *   skr-emu init DIR [options]   create the offline Azure stack's state in DIR (init.c)
 *   skr-emu serve DIR [options]  the IMDS, MAA and Key Vault emulators on DIR (serve.c)
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
    "       skr-emu serve DIR [options]\n"
    "       skr-emu --help\n"
    "\n"
    "init creates everything the offline Azure stack needs in DIR. All of it is EMULATED: no\n"
    "real verifier trusts it, and skr uses it only when told to by name (e.g. 'skr report\n"
    "fetch --device emulated:DIR'). Private keys (*.key) are mode 0600.\n"
    "  ca.pem ca.key              CA, EC P-256, CN \"skr-emu CA\", 10 years\n"
    "  tls.pem tls.key            TLS server certificate from the CA (leaf then CA in tls.pem),\n"
    "                             RSA-2048, SANs localhost, 127.0.0.1, ::1, serverAuth, 1 year\n"
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
    "  -h, --help                    this text\n"
    "\n"
    "serve runs the emulators on a DIR made by init, until SIGINT or SIGTERM:\n"
    "  IMDS (http)    /metadata/identity/oauth2/token (managed identity tokens signed by the\n"
    "                 Entra key, header 'Metadata: true'), /metadata/THIM/amd/certification,\n"
    "                 and Entra for workload identity: /common/discovery/instance,\n"
    "                 /TENANT/v2.0/.well-known/openid-configuration, /TENANT/discovery/v2.0/keys,\n"
    "                 POST /TENANT/oauth2/v2.0/token (client_assertion signature NOT checked)\n"
    "  MAA (https)    /attest/SevSnpVm, /certs, /.well-known/openid-configuration\n"
    "  AKV (https)    Key Vault / Managed HSM keys API and release (key store keys/store.json)\n"
    "TLS uses tls.pem/tls.key: clients trust DIR/ca.pem. Once all three listen, "
    "DIR/endpoints.json\n"
    "holds {\"imds\",\"maa\",\"akv\"} URLs; it is removed on shutdown.\n"
    "\n"
    "serve options:\n"
    "  --host ADDR                   listen address (default 127.0.0.1); a non-loopback one\n"
    "                                is refused without --allow-non-loopback\n"
    "  --imds-port N, --maa-port N, --akv-port N\n"
    "                                ports (default 0: the kernel picks, see endpoints.json)\n"
    "  --fault SERVICE:KIND:RATE[:ARG]\n"
    "                                inject faults (repeatable): SERVICE imds|maa|akv|all;\n"
    "                                KIND status (ARG 400..599; 429/503 add Retry-After: 1),\n"
    "                                delay (ARG ms, then the real answer) or drop (close\n"
    "                                without an answer); RATE a probability 0..1\n"
    "                                (SERVICE:KIND:ARG:RATE is accepted too)\n"
    "  --seed N                      seed of the fault draws (default random, printed)\n"
    "  --allow-non-loopback          allow --host to be a non-loopback address\n";

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
        return emu_cmd_serve(argc - 1, argv + 1);
    }
    return emu_usage_error("unknown command \"%s\"", argv[1]);
}
