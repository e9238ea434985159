#!/usr/bin/env python3
"""diagnose_keys.py - keys for test_diagnose.sh, imported into `skr-emu serve` with Python's
urllib only (independent of `skr key import`).

usage: diagnose_keys.py EMU_DIR NAME MODE SECRET_OUT
  MODE good       exportable oct-HSM key; policy: authority = the emulator's MAA, claims
                  x-ms-sevsnpvm-hostdata = SHA-256 of the security policy,
                  x-ms-sevsnpvm-is-debuggable false, x-ms-attestation-type sevsnpvm
       badhost    the same with a HOST_DATA no platform has (00ab...)
       badauth    the same with another MAA authority
       nonexport  a non-exportable key (no release policy: the vault refuses one)
  SECRET_OUT receives the key's material as base64url and hex, one per line, so that the test
  can check that no output carries it.
Prints the HOST_DATA the policy names; exits 1 with the vault's answer on failure.
"""
import base64
import hashlib
import json
import os
import ssl
import sys
import urllib.error
import urllib.request

DIR, NAME, MODE, OUT = sys.argv[1:5]
EP = json.load(open(os.path.join(DIR, "endpoints.json")))
TLS = ssl.create_default_context(cafile=os.path.join(DIR, "ca.pem"))


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def call(method, url, body=None, headers=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, context=TLS if url.startswith("https") else None,
                                    timeout=20) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


st, body = call("GET", EP["imds"] + "/metadata/identity/oauth2/token?api-version=2018-02-01"
                "&resource=https%3A%2F%2Fvault.azure.net", headers={"Metadata": "true"})
if st != 200:
    print(f"IMDS: {st} {body[:200]!r}")
    sys.exit(1)
bearer = {"Authorization": "Bearer " + json.loads(body)["access_token"]}

policy_text = base64.b64decode(open(os.path.join(DIR, "security-context",
                                                 "security-policy-base64")).read())
host_data = hashlib.sha256(policy_text).hexdigest()
authority = EP["maa"]
if MODE == "badhost":
    host_data = "00ab" + "cd" * 30
if MODE == "badauth":
    authority = "https://sharedeus2.eus2.attest.azure.net"
secret = os.urandom(32)
with open(OUT, "w") as f:
    f.write(b64u(secret) + "\n" + secret.hex() + "\n")
imp = {"key": {"kty": "oct-HSM", "k": b64u(secret), "key_ops": ["encrypt", "decrypt"]},
       "hsm": True}
if MODE == "nonexport":
    imp["attributes"] = {"exportable": False}
else:
    policy = {"version": "1.0.0", "anyOf": [{"authority": authority, "allOf": [
        {"claim": "x-ms-sevsnpvm-hostdata", "equals": host_data},
        {"claim": "x-ms-sevsnpvm-is-debuggable", "equals": False},
        {"claim": "x-ms-attestation-type", "equals": "sevsnpvm"}]}]}
    imp["attributes"] = {"exportable": True}
    imp["release_policy"] = {"contentType": "application/json; charset=utf-8",
                             "data": b64u(json.dumps(policy).encode())}
st, body = call("PUT", EP["akv"] + f"/keys/{NAME}?api-version=7.4", imp, bearer)
if st != 200:
    print(f"import {NAME}: {st} {body[:300]!r}")
    sys.exit(1)
print(host_data)
