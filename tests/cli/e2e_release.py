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
import ssl
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap_with_padding

SKR, DIR = sys.argv[1], sys.argv[2]
EP = json.load(open(os.path.join(DIR, "endpoints.json")))
TLS = ssl.create_default_context(cafile=os.path.join(DIR, "ca.pem"))
STEP = 0


def ok(msg):
    global STEP
    STEP += 1
    print(f"ok {STEP} - {msg}")


def fail(msg):
    print(f"not ok - {msg}")
    sys.exit(1)


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def b64u_dec(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def call(method, url, body=None, headers=None):
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, context=TLS if url.startswith("https") else None,
                                    timeout=20) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


# 1. transfer key and runtime data, as the sidecar makes them
tkey = rsa.generate_private_key(public_exponent=65537, key_size=2048)
pub = tkey.public_key().public_numbers()
jwk = {"e": b64u(pub.e.to_bytes(3, "big")), "key_ops": ["encrypt"], "kid": "transfer-key",
       "kty": "RSA", "n": b64u(pub.n.to_bytes(256, "big"))}
runtime = json.dumps({"keys": [jwk]}, sort_keys=True, separators=(",", ":")).encode()
ok("transfer key and runtime data")

# 2. report bound to the runtime data, from the emulated platform through skr
with tempfile.TemporaryDirectory() as tmp:
    rt = os.path.join(tmp, "runtime.json")
    open(rt, "wb").write(runtime)
    rep, chain = os.path.join(tmp, "r.bin"), os.path.join(tmp, "chain.pem")
    subprocess.run([SKR, "report", "fetch", "--device", "emulated:" + DIR, "--runtime-data", rt,
                    "--format", "bin", "--out", rep, "--certs-out", chain], check=True,
                   stderr=subprocess.DEVNULL)
    report, pem = open(rep, "rb").read(), open(chain, "rb").read()
if report[0x50:0x70] != hashlib.sha256(runtime).digest():
    fail("REPORT_DATA is not SHA-256(runtime data)")
ok("report fetched, REPORT_DATA = SHA-256(runtime data)")

# 3. MAA
policy_text = base64.b64decode(open(os.path.join(DIR, "security-context",
                                                 "security-policy-base64")).read())
bundle = json.dumps({"SnpReport": b64u(report), "VcekCertChain": b64u(pem)}).encode()
st, body = call("POST", EP["maa"] + "/attest/SevSnpVm?api-version=2022-08-01",
                {"report": b64u(bundle), "runtimeData": {"data": b64u(runtime), "dataType": "JSON"},
                 "initTimeData": {"data": b64u(policy_text), "dataType": "Binary"},
                 "nonce": "e2e"})
if st != 200:
    fail(f"MAA attest: {st} {body[:300]!r}")
maa_token = json.loads(body)["token"]
claims = json.loads(b64u_dec(maa_token.split(".")[1]))
host_data = hashlib.sha256(policy_text).hexdigest()
if claims["x-ms-sevsnpvm-hostdata"] != host_data or claims["x-ms-runtime"]["keys"][0]["n"] != jwk["n"]:
    fail("MAA claims do not carry HOST_DATA and the runtime key")
ok("MAA token with hostdata = SHA-256(policy) and the transfer key in x-ms-runtime")

# 4. the MAA token verifies with the key MAA publishes
st, body = call("GET", EP["maa"] + "/certs")
hdr = json.loads(b64u_dec(maa_token.split(".")[0]))
key = next(k for k in json.loads(body)["keys"] if k["kid"] == hdr["kid"])
cert = x509.load_der_x509_certificate(base64.b64decode(key["x5c"][0]))
h, p, s = maa_token.split(".")
cert.public_key().verify(b64u_dec(s), f"{h}.{p}".encode(), padding.PKCS1v15(), hashes.SHA256())
ok("MAA token signature verifies with /certs")

# 5. identity token from IMDS
st, body = call("GET", EP["imds"] + "/metadata/identity/oauth2/token?api-version=2018-02-01"
                "&resource=https%3A%2F%2Fvault.azure.net", headers={"Metadata": "true"})
if st != 200:
    fail(f"IMDS: {st} {body[:200]!r}")
bearer = {"Authorization": "Bearer " + json.loads(body)["access_token"]}
ok("managed identity token from IMDS")

# 6. import an exportable oct-HSM key with a release policy on HOST_DATA
secret = os.urandom(32)
policy = {"version": "1.0.0", "anyOf": [{"authority": EP["maa"], "allOf": [
    {"claim": "x-ms-sevsnpvm-hostdata", "equals": host_data},
    {"claim": "x-ms-sevsnpvm-is-debuggable", "equals": "false"},
    {"claim": "x-ms-attestation-type", "equals": "sevsnpvm"}]}]}
imp = {"key": {"kty": "oct-HSM", "k": b64u(secret), "key_ops": ["encrypt", "decrypt"]},
       "hsm": True, "attributes": {"exportable": True},
       "release_policy": {"contentType": "application/json; charset=utf-8",
                          "data": b64u(json.dumps(policy).encode())}}
st, body = call("PUT", EP["akv"] + "/keys/e2e?api-version=7.4", imp, bearer)
if st != 200:
    fail(f"import: {st} {body[:300]!r}")
ok("exportable oct-HSM key imported with a release policy")

# 7. release, check the JWS, unwrap independently
st, body = call("POST", EP["akv"] + "/keys/e2e/release?api-version=7.4",
                {"target": maa_token, "enc": "RSA_AES_KEY_WRAP_256"}, bearer)
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
payload = json.loads(b64u_dec(p))
key_hsm = json.loads(b64u_dec(payload["response"]["key"]["key"]["key_hsm"]))
ct = b64u_dec(key_hsm["ciphertext"])
aes = tkey.decrypt(ct[:256], padding.OAEP(mgf=padding.MGF1(hashes.SHA256()),
                                         algorithm=hashes.SHA256(), label=None))
plain = aes_key_unwrap_with_padding(aes, ct[256:])
if plain != secret:
    fail("the unwrapped key is not the imported key")
ok("key_hsm unwrapped with pyca/cryptography (RSA-OAEP-256 + AES-KWP): exactly the imported key")

# 8. concurrent requests: 8 imports of distinct keys and 8 releases at once
from concurrent.futures import ThreadPoolExecutor


def import_one(i):
    return call("PUT", EP["akv"] + f"/keys/c{i}?api-version=7.4", imp, bearer)[0]


def release_one(i):
    st, body = call("POST", EP["akv"] + "/keys/e2e/release?api-version=7.4",
                    {"target": maa_token, "enc": "RSA_AES_KEY_WRAP_256"}, bearer)
    if st != 200:
        return st
    pl = json.loads(b64u_dec(json.loads(body)["value"].split(".")[1]))
    c = b64u_dec(json.loads(b64u_dec(pl["response"]["key"]["key"]["key_hsm"]))["ciphertext"])
    k = tkey.decrypt(c[:256], padding.OAEP(mgf=padding.MGF1(hashes.SHA256()),
                                           algorithm=hashes.SHA256(), label=None))
    return 200 if aes_key_unwrap_with_padding(k, c[256:]) == secret else -1


with ThreadPoolExecutor(max_workers=8) as pool:
    results = list(pool.map(import_one, range(8))) + list(pool.map(release_one, range(8)))
if results != [200] * 16:
    fail(f"concurrent imports/releases: {results}")
for i in range(8):
    if call("GET", EP["akv"] + f"/keys/c{i}?api-version=7.4", None, bearer)[0] != 200:
        fail(f"key c{i} lost after concurrent imports")
ok("8 concurrent imports and 8 concurrent releases: all succeed, every key kept")

# 9. a policy the token does not satisfy is denied with the claim named
policy["anyOf"][0]["allOf"][0]["equals"] = "00" * 32
imp["release_policy"]["data"] = b64u(json.dumps(policy).encode())
st, body = call("PUT", EP["akv"] + "/keys/e2e-deny?api-version=7.4", imp, bearer)
st, body = call("POST", EP["akv"] + "/keys/e2e-deny/release?api-version=7.4",
                {"target": maa_token}, bearer)
if st != 403 or b"x-ms-sevsnpvm-hostdata" not in body:
    fail(f"denied release: {st} {body[:300]!r}")
ok("release denied (403) naming x-ms-sevsnpvm-hostdata")
