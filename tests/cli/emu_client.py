"""emu_client.py - the pieces the independent Python clients of `skr-emu serve` share
(e2e_release.py, key_tool.py, policy_agree.py): HTTP to the emulator's IMDS, MAA and Key Vault
with urllib, the sidecar's transfer key and runtime data, an SNP report from the emulated
platform through `skr report fetch`, MAA attestation, key import and the unwrap of a released
key with pyca/cryptography. Nothing here comes from skr but the report, as it would come from
the hardware.
"""
import base64
import json
import os
import ssl
import subprocess
import tempfile
import urllib.error
import urllib.request

API = "api-version=7.4"


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def b64u_dec(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


class Emu:
    """One `skr-emu serve` running on directory d (its endpoints.json and ca.pem)."""

    def __init__(self, d):
        self.dir = d
        self.ep = json.load(open(os.path.join(d, "endpoints.json")))
        self.tls = ssl.create_default_context(cafile=os.path.join(d, "ca.pem"))

    def call(self, method, url, body=None, headers=None):
        """(status, body bytes); body is JSON (a dict or list) or bytes as they are."""
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, context=self.tls if url.startswith("https") else None,
                                        timeout=20) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def context_file(self, name):
        """A file of the security context, base64-decoded (e.g. security-policy-base64)."""
        return base64.b64decode(open(os.path.join(self.dir, "security-context", name)).read())

    def report(self, skr, runtime):
        """(report, VCEK chain PEM) of the emulated platform binding runtime (bytes)."""
        with tempfile.TemporaryDirectory() as tmp:
            rt = os.path.join(tmp, "runtime.json")
            open(rt, "wb").write(runtime)
            rep, chain = os.path.join(tmp, "r.bin"), os.path.join(tmp, "chain.pem")
            subprocess.run([skr, "report", "fetch", "--device", "emulated:" + self.dir,
                            "--runtime-data", rt, "--format", "bin", "--out", rep,
                            "--certs-out", chain], check=True, stderr=subprocess.DEVNULL)
            return open(rep, "rb").read(), open(chain, "rb").read()

    def attest(self, report, pem, runtime, policy_text, endorsements=False, nonce=None):
        """MAA attestation of report: (status, body). endorsements adds the UVM reference info
        of the security context, nonce the request's nonce."""
        bundle = {"SnpReport": b64u(report), "VcekCertChain": b64u(pem)}
        if endorsements:
            uvm = self.context_file("reference-info-base64")
            endo = json.dumps({"Uvm": [base64.urlsafe_b64encode(uvm).decode()]}).encode()
            bundle["Endorsements"] = base64.urlsafe_b64encode(endo).decode()
        req = {"report": b64u(json.dumps(bundle).encode()),
               "runtimeData": {"data": b64u(runtime), "dataType": "JSON"},
               "initTimeData": {"data": b64u(policy_text), "dataType": "Binary"}}
        if nonce is not None:
            req["nonce"] = nonce
        return self.call("POST", self.ep["maa"] + "/attest/SevSnpVm?api-version=2022-08-01", req)

    def vault_bearer(self):
        """(status, body, headers): the managed identity's vault token from IMDS as an
        Authorization header, headers None when IMDS refused."""
        st, body = self.call("GET", self.ep["imds"] + "/metadata/identity/oauth2/token"
                             "?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net",
                             headers={"Metadata": "true"})
        if st != 200:
            return st, body, None
        return st, body, {"Authorization": "Bearer " + json.loads(body)["access_token"]}

    def import_key(self, name, body, bearer):
        """PUT /keys/{name}: (status, body)."""
        return self.call("PUT", self.ep["akv"] + f"/keys/{name}?{API}", body, bearer)

    def release(self, name, target, bearer, enc="RSA_AES_KEY_WRAP_256"):
        """POST /keys/{name}/release with the MAA token target: (status, body)."""
        req = {"target": target}
        if enc is not None:
            req["enc"] = enc
        return self.call("POST", self.ep["akv"] + f"/keys/{name}/release?{API}", req, bearer)


def transfer_key(kid="transfer-key"):
    """(RSA-2048 private key, its public JWK, runtime data {"keys": [jwk]} as the sidecar
    makes it)."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    tkey = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pub = tkey.public_key().public_numbers()
    jwk = {"e": b64u(pub.e.to_bytes(3, "big")), "key_ops": ["encrypt"], "kid": kid,
           "kty": "RSA", "n": b64u(pub.n.to_bytes(256, "big"))}
    runtime = json.dumps({"keys": [jwk]}, sort_keys=True, separators=(",", ":")).encode()
    return tkey, jwk, runtime


def oct_import(secret, policy):
    """The import body of an exportable oct-HSM key holding secret, released under policy."""
    return {"key": {"kty": "oct-HSM", "k": b64u(secret), "key_ops": ["encrypt", "decrypt"]},
            "hsm": True, "attributes": {"exportable": True},
            "release_policy": {"contentType": "application/json; charset=utf-8",
                               "data": b64u(json.dumps(policy).encode())}}


def unwrap(tkey, payload):
    """The key material of a release JWS payload (a dict): key_hsm's ciphertext, RSA-OAEP-256
    of the AES key under the transfer key tkey, then AES-KWP."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    from cryptography.hazmat.primitives.keywrap import aes_key_unwrap_with_padding

    key_hsm = json.loads(b64u_dec(payload["response"]["key"]["key"]["key_hsm"]))
    ct = b64u_dec(key_hsm["ciphertext"])
    aes = tkey.decrypt(ct[:256], padding.OAEP(mgf=padding.MGF1(hashes.SHA256()),
                                             algorithm=hashes.SHA256(), label=None))
    return aes_key_unwrap_with_padding(aes, ct[256:])
