#!/usr/bin/env python3
"""Independent CKM_RSA_AES_KEY_WRAP implementation for test_keywrap (pyca/cryptography).

  kw_wrap.py wrap   PUB.pem  ALG AES_KEY_BYTES IN OUT   RSA-OAEP(K) || AES-KWP(K, IN) -> OUT
  kw_wrap.py unwrap PRIV.pem ALG IN OUT                 the inverse -> OUT

ALG is CKM_RSA_AES_KEY_WRAP (SHA-1), RSA_AES_KEY_WRAP_256 or RSA_AES_KEY_WRAP_384; the OAEP
label is empty and MGF1 uses the OAEP hash (PROTOCOLS.md 7.4). Exit status 0 on success.
"""
import os
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.keywrap import (aes_key_unwrap_with_padding,
                                                    aes_key_wrap_with_padding)

HASHES = {
    "CKM_RSA_AES_KEY_WRAP": hashes.SHA1,
    "RSA_AES_KEY_WRAP_256": hashes.SHA256,
    "RSA_AES_KEY_WRAP_384": hashes.SHA384,
}


def oaep(alg):
    h = HASHES[alg]
    return padding.OAEP(mgf=padding.MGF1(algorithm=h()), algorithm=h(), label=None)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def main(argv):
    if len(argv) == 7 and argv[1] == "wrap":
        pub = serialization.load_pem_public_key(read(argv[2]))
        kek = os.urandom(int(argv[4]))
        blob = pub.encrypt(kek, oaep(argv[3])) + aes_key_wrap_with_padding(kek, read(argv[5]))
        write(argv[6], blob)
        return 0
    if len(argv) == 6 and argv[1] == "unwrap":
        priv = serialization.load_pem_private_key(read(argv[2]), password=None)
        blob = read(argv[4])
        n = priv.key_size // 8
        kek = priv.decrypt(blob[:n], oaep(argv[3]))
        write(argv[5], aes_key_unwrap_with_padding(kek, blob[n:]))
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
