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
import sys

from emu_client import Emu, b64u, b64u_dec, transfer_key, unwrap


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
    from cryptography.hazmat.primitives.asymmetric import padding

    emu = Emu(d)
    tkey, _, runtime = transfer_key("t")
    report, pem = emu.report(skr, runtime)
    st, body = emu.attest(report, pem, runtime, emu.context_file("security-policy-base64"),
                          endorsements=True)
    if st != 200:
        sys.exit(f"MAA: {st} {body[:300]!r}")
    token = json.loads(body)["token"]
    st, body, bearer = emu.vault_bearer()
    if bearer is None:
        sys.exit(f"IMDS: {st} {body[:200]!r}")
    st, body = emu.release(name, token, bearer)
    if st != 200:
        sys.exit(f"release: {st} {body[:400]!r}")
    h, p, s = json.loads(body)["value"].split(".")
    leaf = x509.load_der_x509_certificate(base64.b64decode(json.loads(b64u_dec(h))["x5c"][0]))
    leaf.public_key().verify(b64u_dec(s), f"{h}.{p}".encode(), padding.PKCS1v15(), hashes.SHA256())
    payload = json.loads(b64u_dec(p))
    k = payload["response"]["key"]["key"]
    plain = unwrap(tkey, payload)
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
