#!/usr/bin/env python3
"""crypt_ref.py - an independent implementation of docs/encryption-format.md (the SKRE format of
`skr encrypt` / `skr decrypt`), written from the document with pyca/cryptography, so that the
CLI test can check skr against it in both directions.

usage: crypt_ref.py keys DIR                      writes test JWKs into DIR (see below)
       crypt_ref.py encrypt JWK IN OUT [AAD]      IN -> SKRE file OUT
       crypt_ref.py decrypt JWK IN OUT [AAD]      SKRE file IN -> OUT; exit 1 when it fails
       crypt_ref.py kid JWK                       prints the key's RFC 7638 thumbprint
JWK files are bare JWKs or skrd's {"key": "<JWK as a JSON string>"}.
"""
import base64
import hashlib
import json
import os
import struct
import sys

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"SKRE"
VERSION = 1
ALG_BY_LEN = {16: 1, 24: 2, 32: 3}
ALG_RSA = 4
FIXED = struct.Struct("<4sBBH32sQ")  # magic, version, alg, wrapped_key_len, kid, ciphertext_len
OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def b64u_dec(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def uint(n):
    return b64u(n.to_bytes((n.bit_length() + 7) // 8 or 1, "big"))


def load_jwk(path):
    doc = json.load(open(path))
    if "kty" not in doc and isinstance(doc.get("key"), str):
        doc = json.loads(doc["key"])
    return doc


def thumbprint(jwk):
    """RFC 7638 §3: required members only, sorted, no whitespace; n and e canonical."""
    if jwk["kty"] == "oct":
        members = {"k": jwk["k"], "kty": "oct"}
    elif jwk["kty"] == "RSA":
        n = int.from_bytes(b64u_dec(jwk["n"]), "big")
        e = int.from_bytes(b64u_dec(jwk["e"]), "big")
        members = {"e": uint(e), "kty": "RSA", "n": uint(n)}
    else:
        raise SystemExit("unsupported kty " + jwk["kty"])
    text = json.dumps(members, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(text).digest()


def rsa_public(jwk):
    n = int.from_bytes(b64u_dec(jwk["n"]), "big")
    e = int.from_bytes(b64u_dec(jwk["e"]), "big")
    return rsa.RSAPublicNumbers(e, n).public_key()


def rsa_private(jwk):
    num = {m: int.from_bytes(b64u_dec(jwk[m]), "big") for m in ("n", "e", "d", "p", "q", "dp",
                                                                "dq", "qi")}
    pub = rsa.RSAPublicNumbers(num["e"], num["n"])
    return rsa.RSAPrivateNumbers(num["p"], num["q"], num["d"], num["dp"], num["dq"], num["qi"],
                                 pub).private_key()


def encrypt(jwk, data, aad):
    if jwk["kty"] == "oct":
        key = b64u_dec(jwk["k"])
        alg, wrapped = ALG_BY_LEN[len(key)], b""
    else:
        key = os.urandom(32)
        alg, wrapped = ALG_RSA, rsa_public(jwk).encrypt(key, OAEP)
    nonce = os.urandom(12)
    header = FIXED.pack(MAGIC, VERSION, alg, len(wrapped), thumbprint(jwk), len(data))
    header += wrapped + nonce
    return header + AESGCM(key).encrypt(nonce, data, header + aad)


def decrypt(jwk, blob, aad):
    magic, version, alg, wlen, kid, clen = FIXED.unpack_from(blob)
    if magic != MAGIC or version != VERSION:
        raise ValueError("bad magic or version")
    if len(blob) != FIXED.size + wlen + 12 + clen + 16:
        raise ValueError("bad length")
    if kid != thumbprint(jwk):
        raise ValueError("wrong key")
    off = FIXED.size
    wrapped, nonce = blob[off:off + wlen], blob[off + wlen:off + wlen + 12]
    header = blob[:off + wlen + 12]
    if alg == ALG_RSA:
        key = rsa_private(jwk).decrypt(wrapped, OAEP)
    else:
        key = b64u_dec(jwk["k"])
        if ALG_BY_LEN[len(key)] != alg or wlen != 0:
            raise ValueError("algorithm does not fit the key")
    return AESGCM(key).decrypt(nonce, blob[len(header):], header + aad)


def rsa_jwk(priv, leading_zero=False):
    pn = priv.private_numbers()
    n = pn.public_numbers.n.to_bytes(priv.key_size // 8, "big")
    jwk = {"kty": "RSA", "n": b64u((b"\0" if leading_zero else b"") + n),
           "e": uint(pn.public_numbers.e), "d": uint(pn.d), "p": uint(pn.p), "q": uint(pn.q),
           "dp": uint(pn.dmp1), "dq": uint(pn.dmq1), "qi": uint(pn.iqmp),
           "key_ops": ["encrypt", "decrypt"]}
    return jwk


def write(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f)


def keys(d):
    """oct16/24/32, oct20 (bad size), rsa2048/3072/4096 (+ _pub: public members only,
    rsa2048z: "n" with a leading zero byte as AKV writes it), rsa2048b (another key), ec
    (P-256), and *_rel: the same as skrd's {"key": "<JWK string>"} response."""
    for n in (16, 20, 24, 32):
        write(os.path.join(d, f"oct{n}.jwk"), {"kty": "oct", "k": b64u(os.urandom(n)),
                                               "key_ops": ["encrypt", "decrypt"]})
    write(os.path.join(d, "oct32b.jwk"), {"kty": "oct", "k": b64u(os.urandom(32))})
    for bits in (2048, 3072, 4096):
        priv = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        jwk = rsa_jwk(priv)
        write(os.path.join(d, f"rsa{bits}.jwk"), jwk)
        write(os.path.join(d, f"rsa{bits}_pub.jwk"), {m: jwk[m] for m in ("kty", "n", "e")})
        if bits == 2048:
            write(os.path.join(d, "rsa2048z.jwk"), rsa_jwk(priv, leading_zero=True))
    write(os.path.join(d, "rsa2048b.jwk"),
          rsa_jwk(rsa.generate_private_key(public_exponent=65537, key_size=2048)))
    pn = ec.generate_private_key(ec.SECP256R1()).private_numbers()
    write(os.path.join(d, "ec.jwk"), {"kty": "EC", "crv": "P-256",
                                      "x": b64u(pn.public_numbers.x.to_bytes(32, "big")),
                                      "y": b64u(pn.public_numbers.y.to_bytes(32, "big")),
                                      "d": b64u(pn.private_value.to_bytes(32, "big"))})
    for name in ("oct32", "rsa3072"):
        jwk = json.load(open(os.path.join(d, name + ".jwk")))
        write(os.path.join(d, name + "_rel.jwk"),
              {"key": json.dumps(jwk, sort_keys=True, separators=(",", ":"))})


def main():
    cmd = sys.argv[1]
    if cmd == "keys":
        keys(sys.argv[2])
        return 0
    jwk = load_jwk(sys.argv[2])
    if cmd == "kid":
        print(b64u(thumbprint(jwk)))
        return 0
    data = open(sys.argv[3], "rb").read()
    aad = sys.argv[5].encode() if len(sys.argv) > 5 else b""
    if cmd == "encrypt":
        out = encrypt(jwk, data, aad)
    else:
        try:
            out = decrypt(jwk, data, aad)
        except (InvalidTag, ValueError) as e:
            print(f"decrypt failed: {type(e).__name__} {e}", file=sys.stderr)
            return 1
    open(sys.argv[4], "wb").write(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
