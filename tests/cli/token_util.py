#!/usr/bin/env python3
"""token_util.py - the independent side of test_token.sh: keys made and imported into the
emulated Key Vault here (urllib + pyca/cryptography, not skr), RFC 7638 fingerprints computed
here, JWTs decoded here.

usage:
  token_util.py import EMU_DIR NAME oct|rsa WANT.json [HOST_DATA]
        makes a key, imports it as NAME (oct-HSM or RSA-HSM, exportable) with a release policy
        requiring HOST_DATA (default: the SHA-256 of the emulator's security policy) from the
        emulator's MAA; writes the JWK a release should give back to WANT.json and prints its
        RFC 7638 SHA-256 fingerprint (hex)
  token_util.py fp JWK.json             RFC 7638 SHA-256 fingerprint (hex) of a JWK
  token_util.py compare GOT.json WANT.json
        exit 0 when GOT is the key WANT (same kty without -HSM, same members), else prints why
  token_util.py claims TOKEN_FILE       the claims of a compact JWT (first line of the file)
  token_util.py get JSON_FILE PATH      a member (PATH a.b.c) of a JSON file: strings as is,
                                        anything else as compact JSON; exit 1 when missing
  token_util.py fed FILE                writes a projected service account token (the emulated
                                        Entra does not check its signature)
  token_util.py jwt FILE EXP_DELTA      writes an Entra-shaped JWT (signature not valid)
                                        expiring EXP_DELTA seconds from now
  token_util.py vault-token EMU_DIR     prints an IMDS managed identity token for the vault
"""
import base64
import hashlib
import json
import os
import sys
import time

from cryptography.hazmat.primitives.asymmetric import rsa

import emu_client
from emu_client import b64u, b64u_dec


def uint_bytes(i):
    return i.to_bytes(max(1, (i.bit_length() + 7) // 8), "big")


def fingerprint(jwk):
    """RFC 7638 §3.2: the required members only, sorted, no whitespace; kty without -HSM."""
    kty = jwk["kty"].removesuffix("-HSM")
    required = {"RSA": ("e", "n"), "EC": ("crv", "x", "y"), "oct": ("k",)}[kty]
    members = {m: jwk[m] for m in required}
    members["kty"] = kty
    text = json.dumps(members, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class Emu(emu_client.Emu):
    def vault_token(self):
        st, body, bearer = self.vault_bearer()
        if bearer is None:
            sys.exit(f"IMDS token: HTTP {st} {body[:200]!r}")
        return bearer["Authorization"].removeprefix("Bearer ")


def host_data(d):
    sc = os.path.join(d, "security-context", "security-policy-base64")
    return hashlib.sha256(base64.b64decode(open(sc).read())).hexdigest()


def cmd_import(d, name, kind, want_path, hd=None):
    emu = Emu(d)
    if kind == "oct":
        k = b64u(os.urandom(32))
        imported = {"kty": "oct-HSM", "k": k, "key_ops": ["wrapKey", "unwrapKey"]}
        want = {"kty": "oct", "k": k}
    else:
        r = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pn = r.private_numbers()
        nums = {"n": pn.public_numbers.n, "e": pn.public_numbers.e, "d": pn.d, "p": pn.p,
                "q": pn.q, "dp": pn.dmp1, "dq": pn.dmq1, "qi": pn.iqmp}
        members = {m: b64u(uint_bytes(v)) for m, v in nums.items()}
        imported = dict(members, kty="RSA-HSM", key_ops=["encrypt", "decrypt"])
        want = dict(members, kty="RSA")
    policy = {"version": "1.0.0", "anyOf": [{"authority": emu.ep["maa"], "allOf": [
        {"claim": "x-ms-sevsnpvm-hostdata", "equals": hd or host_data(d)},
        {"claim": "x-ms-sevsnpvm-is-debuggable", "equals": "false"}]}]}
    body = {"key": imported, "hsm": True, "attributes": {"exportable": True},
            "release_policy": {"contentType": "application/json; charset=utf-8",
                               "data": b64u(json.dumps(policy).encode())}}
    st, resp = emu.call("PUT", emu.ep["akv"] + f"/keys/{name}?api-version=7.4", body,
                        {"Authorization": "Bearer " + emu.vault_token()})
    if st != 200:
        sys.exit(f"import {name}: HTTP {st} {resp[:300]!r}")
    with open(want_path, "w") as f:
        json.dump(want, f)
    print(fingerprint(want))


def cmd_compare(got_path, want_path):
    got = json.load(open(got_path))
    want = json.load(open(want_path))
    diffs = []
    if got.get("kty", "").removesuffix("-HSM") != want["kty"]:
        diffs.append(f"kty {got.get('kty')!r}, expected {want['kty']!r}")
    for m, v in want.items():
        if m == "kty":
            continue
        g = got.get(m)
        if g is None:
            diffs.append(f"member {m} missing")
        elif int.from_bytes(b64u_dec(g), "big") != int.from_bytes(b64u_dec(v), "big") or (
                m == "k" and b64u_dec(g) != b64u_dec(v)):
            diffs.append(f"member {m} differs")
    if diffs:
        print("; ".join(diffs))
        sys.exit(1)


def cmd_get(path, member):
    v = json.load(open(path))
    for part in member.split("."):
        if not isinstance(v, dict) or part not in v:
            sys.exit(f"{member}: missing")
        v = v[part]
    print(v if isinstance(v, str) else json.dumps(v, sort_keys=True, separators=(",", ":")))


def cmd_fed(path):
    now = int(time.time())
    hdr = {"alg": "RS256", "kid": "k8s", "typ": "JWT"}
    claims = {"aud": ["api://AzureADTokenExchange"], "iss": "https://oidc.aks.example/issuer",
              "sub": "system:serviceaccount:default:skr", "iat": now, "nbf": now,
              "exp": now + 3600}
    with open(path, "w") as f:
        f.write(b64u(json.dumps(hdr).encode()) + "." + b64u(json.dumps(claims).encode()) + "." +
                b64u(b"not-checked-by-the-emulator") + "\n")


def cmd_jwt(path, delta):
    now = int(time.time())
    hdr = {"alg": "RS256", "kid": "test", "typ": "JWT"}
    claims = {"aud": "https://vault.azure.net", "iss": "https://sts.windows.net/t/",
              "iat": now + delta - 3600, "nbf": now + delta - 3600, "exp": now + delta,
              "appid": "11111111-2222-3333-4444-555555555555",
              "oid": "66666666-7777-8888-9999-000000000000",
              "sub": "66666666-7777-8888-9999-000000000000"}
    with open(path, "w") as f:
        f.write(b64u(json.dumps(hdr).encode()) + "." + b64u(json.dumps(claims).encode()) + "." +
                b64u(os.urandom(256)) + "\n")


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "import":
        cmd_import(*args[:4], *(args[4:5]))
    elif cmd == "fp":
        print(fingerprint(json.load(open(args[0]))))
    elif cmd == "compare":
        cmd_compare(args[0], args[1])
    elif cmd == "claims":
        token = open(args[0]).readline().strip()
        print(json.dumps(json.loads(b64u_dec(token.split(".")[1])), sort_keys=True))
    elif cmd == "get":
        cmd_get(args[0], args[1])
    elif cmd == "fed":
        cmd_fed(args[0])
    elif cmd == "jwt":
        cmd_jwt(args[0], int(args[1]))
    elif cmd == "vault-token":
        print(Emu(args[0]).vault_token())
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
