#!/usr/bin/env python3
"""key_tool.py - independent helpers for test_key.sh (Python stdlib + pyca/cryptography; no skr
code except `skr report fetch` for the emulated SNP report).

  key_tool.py release SKR EMU_DIR NAME   attest on the emulated platform, MAA token, release NAME
                                         from the emulator's Key Vault, check the JWS signature,
                                         unwrap (RSA-OAEP-256 + AES-KWP); prints JSON
                                         {"kty", "oct_hex" | "d_hex", "n", "crv", "x", "y"}
  key_tool.py hkdf IKM_HEX SALT_HEX INFO  HKDF-SHA256 (RFC 5869, hmac/hashlib), 32 bytes, hex
  key_tool.py d PEM_OR_DER_FILE           the RSA private exponent, minimal big-endian hex
  key_tool.py pub KEYFILE                 the public JWK members of a PEM/DER private key (JSON)
"""
import base64
import hashlib
import hmac
import json
import os
import ssl
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def b64u_dec(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def hkdf(ikm, salt, info, n=32):
    prk = hmac.new(salt if salt else b"\0" * 32, ikm, hashlib.sha256).digest()
    out, t, i = b"", b"", 1
    while len(out) < n:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        out += t
        i += 1
    return out[:n]


def load_priv(path):
    from cryptography.hazmat.primitives import serialization
    data = open(path, "rb").read()
    if b"-----BEGIN" in data:
        return serialization.load_pem_private_key(data, None)
    return serialization.load_der_private_key(data, None)


def minimal(i):
    return i.to_bytes((i.bit_length() + 7) // 8, "big")


def pub_members(k):
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    if isinstance(k, rsa.RSAPrivateKey):
        p = k.public_key().public_numbers()
        return {"n": b64u(minimal(p.n)), "e": b64u(minimal(p.e))}
    p = k.public_key().public_numbers()
    size = (k.curve.key_size + 7) // 8
    crv = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}[k.curve.name]
    return {"crv": crv, "x": b64u(p.x.to_bytes(size, "big")), "y": b64u(p.y.to_bytes(size, "big"))}


def release(skr, d, name):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa
    from cryptography.hazmat.primitives.keywrap import aes_key_unwrap_with_padding

    ep = json.load(open(os.path.join(d, "endpoints.json")))
    tls = ssl.create_default_context(cafile=os.path.join(d, "ca.pem"))

    def call(method, url, body=None, headers=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, context=tls if url.startswith("https") else None,
                                        timeout=20) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    tkey = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pub = tkey.public_key().public_numbers()
    jwk = {"e": b64u(pub.e.to_bytes(3, "big")), "key_ops": ["encrypt"], "kid": "t",
           "kty": "RSA", "n": b64u(pub.n.to_bytes(256, "big"))}
    runtime = json.dumps({"keys": [jwk]}, sort_keys=True, separators=(",", ":")).encode()
    with tempfile.TemporaryDirectory() as tmp:
        rt = os.path.join(tmp, "rt.json")
        open(rt, "wb").write(runtime)
        rep, chain = os.path.join(tmp, "r.bin"), os.path.join(tmp, "c.pem")
        subprocess.run([skr, "report", "fetch", "--device", "emulated:" + d, "--runtime-data", rt,
                        "--format", "bin", "--out", rep, "--certs-out", chain], check=True,
                       stderr=subprocess.DEVNULL)
        report, pem = open(rep, "rb").read(), open(chain, "rb").read()
    pol = base64.b64decode(open(os.path.join(d, "security-context", "security-policy-base64")).read())
    uvm = base64.b64decode(open(os.path.join(d, "security-context", "reference-info-base64")).read())
    endo = json.dumps({"Uvm": [base64.urlsafe_b64encode(uvm).decode()]}).encode()
    bundle = json.dumps({"SnpReport": b64u(report), "VcekCertChain": b64u(pem),
                         "Endorsements": base64.urlsafe_b64encode(endo).decode()}).encode()
    st, body = call("POST", ep["maa"] + "/attest/SevSnpVm?api-version=2022-08-01",
                    {"report": b64u(bundle), "runtimeData": {"data": b64u(runtime), "dataType": "JSON"},
                     "initTimeData": {"data": b64u(pol), "dataType": "Binary"}})
    if st != 200:
        sys.exit(f"MAA: {st} {body[:300]!r}")
    token = json.loads(body)["token"]
    st, body = call("GET", ep["imds"] + "/metadata/identity/oauth2/token?api-version=2018-02-01"
                    "&resource=https%3A%2F%2Fvault.azure.net", headers={"Metadata": "true"})
    bearer = {"Authorization": "Bearer " + json.loads(body)["access_token"]}
    st, body = call("POST", ep["akv"] + f"/keys/{name}/release?api-version=7.4",
                    {"target": token, "enc": "RSA_AES_KEY_WRAP_256"}, bearer)
    if st != 200:
        sys.exit(f"release: {st} {body[:400]!r}")
    h, p, s = json.loads(body)["value"].split(".")
    leaf = x509.load_der_x509_certificate(base64.b64decode(json.loads(b64u_dec(h))["x5c"][0]))
    leaf.public_key().verify(b64u_dec(s), f"{h}.{p}".encode(), padding.PKCS1v15(), hashes.SHA256())
    k = json.loads(b64u_dec(p))["response"]["key"]["key"]
    ct = b64u_dec(json.loads(b64u_dec(k["key_hsm"]))["ciphertext"])
    aes = tkey.decrypt(ct[:256], padding.OAEP(mgf=padding.MGF1(hashes.SHA256()),
                                             algorithm=hashes.SHA256(), label=None))
    plain = aes_key_unwrap_with_padding(aes, ct[256:])
    out = {"kty": k["kty"]}
    if k["kty"].startswith("oct"):
        out["oct_hex"] = plain.hex()
    else:
        priv = serialization.load_der_private_key(plain, None)
        out.update(pub_members(priv))
        if "n" in out:
            out["d_hex"] = minimal(priv.private_numbers().d).hex()
    print(json.dumps(out))


def main():
    cmd = sys.argv[1]
    if cmd == "release":
        release(sys.argv[2], sys.argv[3], sys.argv[4])
    elif cmd == "hkdf":
        print(hkdf(bytes.fromhex(sys.argv[2]), bytes.fromhex(sys.argv[3]),
                   sys.argv[4].encode()).hex())
    elif cmd == "d":
        print(minimal(load_priv(sys.argv[2]).private_numbers().d).hex())
    elif cmd == "pub":
        print(json.dumps(pub_members(load_priv(sys.argv[2]))))
    else:
        sys.exit("unknown command")


main()
