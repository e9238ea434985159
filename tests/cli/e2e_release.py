#!/usr/bin/env python3
"""e2e_release.py - the whole Secure Key Release flow against `skr-emu serve`, driven by an
independent client: Python's urllib for HTTP and pyca/cryptography for every piece of crypto
(transfer key, JWS check, RSA-OAEP + AES-KWP unwrap). Only the SNP report comes from skr
(`skr report fetch --device emulated:DIR`), as it would come from the hardware.

usage: e2e_release.py SKR EMU_DIR   (skr-emu serve must be running on EMU_DIR)
Prints one line per step; exits 1 on the first failure.
"""
import base64
import hashlib
import json
import os
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding

from emu_client import Emu, b64u, b64u_dec, oct_import, transfer_key, unwrap

SKR, DIR = sys.argv[1], sys.argv[2]
EMU = Emu(DIR)
STEP = 0


def ok(msg):
    global STEP
    STEP += 1
    print(f"ok {STEP} - {msg}")


def fail(msg):
    print(f"not ok - {msg}")
    sys.exit(1)


# 1. transfer key and runtime data, as the sidecar makes them
tkey, jwk, runtime = transfer_key()
ok("transfer key and runtime data")

# 2. report bound to the runtime data, from the emulated platform through skr
report, pem = EMU.report(SKR, runtime)
if report[0x50:0x70] != hashlib.sha256(runtime).digest():
    fail("REPORT_DATA is not SHA-256(runtime data)")
ok("report fetched, REPORT_DATA = SHA-256(runtime data)")

# 3. MAA
policy_text = EMU.context_file("security-policy-base64")
st, body = EMU.attest(report, pem, runtime, policy_text, nonce="e2e")
if st != 200:
    fail(f"MAA attest: {st} {body[:300]!r}")
maa_token = json.loads(body)["token"]
claims = json.loads(b64u_dec(maa_token.split(".")[1]))
host_data = hashlib.sha256(policy_text).hexdigest()
if claims["x-ms-sevsnpvm-hostdata"] != host_data or claims["x-ms-runtime"]["keys"][0]["n"] != jwk["n"]:
    fail("MAA claims do not carry HOST_DATA and the runtime key")
ok("MAA token with hostdata = SHA-256(policy) and the transfer key in x-ms-runtime")

# 4. the MAA token verifies with the key MAA publishes
st, body = EMU.call("GET", EMU.ep["maa"] + "/certs")
hdr = json.loads(b64u_dec(maa_token.split(".")[0]))
key = next(k for k in json.loads(body)["keys"] if k["kid"] == hdr["kid"])
cert = x509.load_der_x509_certificate(base64.b64decode(key["x5c"][0]))
h, p, s = maa_token.split(".")
cert.public_key().verify(b64u_dec(s), f"{h}.{p}".encode(), padding.PKCS1v15(), hashes.SHA256())
ok("MAA token signature verifies with /certs")

# 5. identity token from IMDS
st, body, bearer = EMU.vault_bearer()
if bearer is None:
    fail(f"IMDS: {st} {body[:200]!r}")
ok("managed identity token from IMDS")

# 6. import an exportable oct-HSM key with a release policy on HOST_DATA
secret = os.urandom(32)
policy = {"version": "1.0.0", "anyOf": [{"authority": EMU.ep["maa"], "allOf": [
    {"claim": "x-ms-sevsnpvm-hostdata", "equals": host_data},
    {"claim": "x-ms-sevsnpvm-is-debuggable", "equals": "false"},
    {"claim": "x-ms-attestation-type", "equals": "sevsnpvm"}]}]}
imp = oct_import(secret, policy)
st, body = EMU.import_key("e2e", imp, bearer)
if st != 200:
    fail(f"import: {st} {body[:300]!r}")
ok("exportable oct-HSM key imported with a release policy")

# 7. release, check the JWS, unwrap independently
st, body = EMU.release("e2e", maa_token, bearer)
if st != 200:
    fail(f"release: {st} {body[:300]!r}")
jws = json.loads(body)["value"]
h, p, s = jws.split(".")
jh = json.loads(b64u_dec(h))
leaf = x509.load_der_x509_certificate(base64.b64decode(jh["x5c"][0]))
ca = x509.load_pem_x509_certificate(open(os.path.join(DIR, "ca.pem"), "rb").read())
ca.public_key().verify(leaf.signature, leaf.tbs_certificate_bytes,
                       ec.ECDSA(leaf.signature_hash_algorithm)
                       if isinstance(ca.public_key(), ec.EllipticCurvePublicKey)
                       else padding.PKCS1v15())
if b64u(hashlib.sha256(leaf.public_bytes(serialization.Encoding.DER)).digest()) != jh["x5t#S256"]:
    fail("x5t#S256 does not match x5c[0]")
if jh["alg"] != "RS256":
    fail(f"release JWS alg {jh['alg']}, the real service signs RS256")
leaf.public_key().verify(b64u_dec(s), f"{h}.{p}".encode(), padding.PKCS1v15(), hashes.SHA256())
ok(f"release JWS ({jh['alg']}) verifies with x5c[0], issued by the emulator CA")
if unwrap(tkey, json.loads(b64u_dec(p))) != secret:
    fail("the unwrapped key is not the imported key")
ok("key_hsm unwrapped with pyca/cryptography (RSA-OAEP-256 + AES-KWP): exactly the imported key")

# 8. concurrent requests: 8 imports of distinct keys and 8 releases at once
from concurrent.futures import ThreadPoolExecutor


def import_one(i):
    return EMU.import_key(f"c{i}", imp, bearer)[0]


def release_one(i):
    st, body = EMU.release("e2e", maa_token, bearer)
    if st != 200:
        return st
    pl = json.loads(b64u_dec(json.loads(body)["value"].split(".")[1]))
    return 200 if unwrap(tkey, pl) == secret else -1


with ThreadPoolExecutor(max_workers=8) as pool:
    results = list(pool.map(import_one, range(8))) + list(pool.map(release_one, range(8)))
if results != [200] * 16:
    fail(f"concurrent imports/releases: {results}")
for i in range(8):
    if EMU.call("GET", EMU.ep["akv"] + f"/keys/c{i}?api-version=7.4", None, bearer)[0] != 200:
        fail(f"key c{i} lost after concurrent imports")
ok("8 concurrent imports and 8 concurrent releases: all succeed, every key kept")

# 9. a policy the token does not satisfy is denied with the claim named
policy["anyOf"][0]["allOf"][0]["equals"] = "00" * 32
imp["release_policy"]["data"] = b64u(json.dumps(policy).encode())
st, body = EMU.import_key("e2e-deny", imp, bearer)
st, body = EMU.release("e2e-deny", maa_token, bearer, enc=None)
if st != 403 or b"x-ms-sevsnpvm-hostdata" not in body:
    fail(f"denied release: {st} {body[:300]!r}")
ok("release denied (403) naming x-ms-sevsnpvm-hostdata")
