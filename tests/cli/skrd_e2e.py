#!/usr/bin/env python3
"""skrd_e2e.py - drives skrd (and examples/custom-app) against `skr-emu serve` with an
independent client: Python's http.client/urllib for HTTP and pyca/cryptography for every check.
The keys are generated here, imported into the emulated Key Vault with a release policy bound to
the emulated platform, released through skrd, and compared with what was imported.

usage:
  skrd_e2e.py e2e    SKRD EMU_DIR WORK          every route, success and failure (issue #4 Proof)
  skrd_e2e.py faults SKRD EMU_DIR WORK EMU_PID  releases through injected faults, then with the
                                                emulator (EMU_PID, stopped here) gone
  skrd_e2e.py example CUSTOM_APP EMU_DIR WORK   examples/custom-app releases an imported key

skr-emu serve must be running on EMU_DIR. Prints "ok - ..." / "not ok - ..." lines (the shell
numbers them) and "#" detail lines; exits 1 when any check failed.
"""
import base64
import hashlib
import http.client
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from concurrent.futures import ThreadPoolExecutor

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.utils import CryptographyDeprecationWarning

# AMD VCEKs have serial number 0, which pyca/cryptography loads with a deprecation warning.
warnings.filterwarnings("ignore", category=CryptographyDeprecationWarning)

MODE = sys.argv[1]
PROG, DIR, WORK = sys.argv[2], sys.argv[3], sys.argv[4]
EP = json.load(open(os.path.join(DIR, "endpoints.json")))
EMU_CFG = json.load(open(os.path.join(DIR, "emu.json")))
TLS = ssl.create_default_context(cafile=os.path.join(DIR, "ca.pem"))
SC = os.path.join(DIR, "security-context")
FAILS = 0
ENCS = ["RSA_AES_KEY_WRAP_256", "RSA_AES_KEY_WRAP_384", "CKM_RSA_AES_KEY_WRAP"]
# Known secrets (released key members, tokens): none may appear in any skrd log.
SECRETS = {}
LOGS = []
CHILDREN = []
# `make valgrind` runs skrd under memcheck (SKR_VALGRIND=1), 20-50 times slower: one RSA-2048
# transfer key takes 10-60 s. skrd then gets a 15-minute release deadline unless a check sets a
# short one on purpose, every wait is ten times longer, and checks of how fast something fails
# skip themselves (timing_check).
SLOW = os.environ.get("SKR_VALGRIND") == "1"
SLOW_DEADLINE_MS = 900000
WAIT = 10 if SLOW else 1


# ---- reporting ---------------------------------------------------------------------------

def ok(desc):
    print(f"ok - {desc}", flush=True)


def not_ok(desc, detail=""):
    global FAILS
    FAILS += 1
    print(f"not ok - {desc}", flush=True)
    for line in str(detail).splitlines()[:25]:
        print(f"#   {line}", flush=True)


def check(cond, desc, detail=""):
    if cond:
        ok(desc)
    else:
        not_ok(desc, detail)
    return bool(cond)


def note(msg):
    print(f"# {msg}", flush=True)


def timing_check(cond, desc, detail=""):
    """check() for how fast something happened; skipped under memcheck, where it says nothing."""
    if SLOW:
        ok(f"{desc} # SKIP timing under memcheck")
        return True
    return check(cond, desc, detail)


def deadline_ms(ms):
    """The release deadline a check gives skrd: ms, or SLOW_DEADLINE_MS under memcheck."""
    return SLOW_DEADLINE_MS if SLOW else ms


# ---- encodings ---------------------------------------------------------------------------

def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def b64u_dec(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64(b):
    return base64.b64encode(b).decode()


def uint_bytes(i, length=None):
    if length is None:
        length = max(1, (i.bit_length() + 7) // 8)
    return i.to_bytes(length, "big")


def host_of(url):
    """The reference sidecar takes endpoints as host[:port] without a scheme."""
    return url.split("://", 1)[1].rstrip("/")


def jwt_claims(token):
    return json.loads(b64u_dec(token.split(".")[1]))


# ---- talking to the emulator (urllib) ----------------------------------------------------

def call(method, url, body=None, headers=None, timeout=30):
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, context=TLS if url.startswith("https") else None,
                                    timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def imds_token(resource="https://vault.azure.net"):
    st, body = call("GET", EP["imds"] + "/metadata/identity/oauth2/token?api-version=2018-02-01"
                    "&resource=" + urllib.parse.quote(resource, safe=""),
                    headers={"Metadata": "true"})
    if st != 200:
        raise RuntimeError(f"IMDS token: {st} {body[:200]!r}")
    return json.loads(body)["access_token"]


def federated_assertion(sub="system:serviceaccount:default:skr"):
    """A projected service account token as AKS writes it (the emulator does not check its
    signature: it cannot know the cluster issuer's keys)."""
    now = int(time.time())
    hdr = {"alg": "RS256", "kid": "k8s", "typ": "JWT"}
    claims = {"aud": ["api://AzureADTokenExchange"], "iss": "https://oidc.aks.example/issuer",
              "sub": sub, "iat": now, "nbf": now, "exp": now + 3600}
    return (b64u(json.dumps(hdr).encode()) + "." + b64u(json.dumps(claims).encode()) + "." +
            b64u(b"not-checked-by-the-emulator"))


def entra_token(client_id, resource="https://vault.azure.net"):
    """Client credentials with a federated assertion, straight from the emulated Entra."""
    form = urllib.parse.urlencode({
        "grant_type": "client_credentials", "client_id": client_id,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": federated_assertion(), "scope": resource + "/.default"}).encode()
    req = urllib.request.Request(EP["imds"] + f"/{EMU_CFG['tenant_id']}/oauth2/v2.0/token",
                                 data=form, method="POST",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())["access_token"]


def forged_entra_token(exp_delta):
    """An Entra-shaped token signed with the emulator's Entra key, exp = now + exp_delta."""
    key = serialization.load_pem_private_key(
        open(os.path.join(DIR, "entra", "signing.key"), "rb").read(), None)
    now = int(time.time())
    mi = EMU_CFG["managed_identity"]
    hdr = {"alg": "RS256", "kid": EMU_CFG["entra"]["kid"], "typ": "JWT"}
    claims = {"aud": "https://vault.azure.net", "iss": f"https://sts.windows.net/"
              f"{EMU_CFG['tenant_id']}/", "iat": now + exp_delta - 3600,
              "nbf": now + exp_delta - 3600, "exp": now + exp_delta, "appid": mi["client_id"],
              "oid": mi["object_id"], "sub": mi["object_id"], "tid": EMU_CFG["tenant_id"],
              "ver": "1.0"}
    signing_input = (b64u(json.dumps(hdr).encode()) + "." + b64u(json.dumps(claims).encode()))
    sig = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return signing_input + "." + b64u(sig)


# ---- the emulated platform, read independently --------------------------------------------

POLICY_TEXT = base64.b64decode(open(os.path.join(SC, "security-policy-base64")).read())
HOST_DATA = hashlib.sha256(POLICY_TEXT).hexdigest()
THIM = json.loads(base64.b64decode(open(os.path.join(SC, "host-amd-cert-base64")).read()))
REFERENCE_INFO = open(os.path.join(SC, "reference-info-base64")).read().strip()


def release_policy(host_data=HOST_DATA, authority=None):
    return {"version": "1.0.0", "anyOf": [{"authority": authority or EP["maa"], "allOf": [
        {"claim": "x-ms-sevsnpvm-hostdata", "equals": host_data},
        {"claim": "x-ms-sevsnpvm-is-debuggable", "equals": "false"},
        {"claim": "x-ms-attestation-type", "equals": "sevsnpvm"}]}]}


def import_key(bearer, name, jwk, policy=None, exportable=True):
    body = {"key": jwk, "hsm": True, "attributes": {"exportable": exportable}}
    if policy is not None:
        body["release_policy"] = {"contentType": "application/json; charset=utf-8",
                                  "data": b64u(json.dumps(policy).encode())}
    st, resp = call("PUT", EP["akv"] + f"/keys/{name}?api-version=7.4", body,
                    {"Authorization": "Bearer " + bearer})
    if st != 200:
        raise RuntimeError(f"import {name}: {st} {resp[:300]!r}")


def make_keys():
    """RSA-HSM, EC-HSM and oct-HSM keys made here; returns {name: (import JWK, expected JWK)}."""
    out = {}
    r = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pn = r.private_numbers()
    members = {"n": pn.public_numbers.n, "e": pn.public_numbers.e, "d": pn.d, "p": pn.p,
               "q": pn.q, "dp": pn.dmp1, "dq": pn.dmq1, "qi": pn.iqmp}
    rj = {k: b64u(uint_bytes(v)) for k, v in members.items()}
    ops = ["encrypt", "decrypt", "wrapKey", "unwrapKey"]
    out["skrd-rsa"] = (dict(rj, kty="RSA-HSM", key_ops=ops), dict(rj, kty="RSA", key_ops=ops))
    e = ec.generate_private_key(ec.SECP384R1())
    en = e.private_numbers()
    ej = {"crv": "P-384", "x": b64u(uint_bytes(en.public_numbers.x, 48)),
          "y": b64u(uint_bytes(en.public_numbers.y, 48)),
          "d": b64u(uint_bytes(en.private_value, 48))}
    out["skrd-ec"] = (dict(ej, kty="EC-HSM", key_ops=["sign", "verify"]),
                      dict(ej, kty="EC", key_ops=["sign", "verify"]))
    k = b64u(os.urandom(32))
    out["skrd-oct"] = ({"kty": "oct-HSM", "k": k, "key_ops": ops},
                       {"kty": "oct", "k": k, "key_ops": ops})
    return out


def compare_jwk(got, want):
    """'' when the released JWK is the imported key, else what differs."""
    diffs = []
    if got.get("kty") != want["kty"]:
        diffs.append(f"kty {got.get('kty')!r}, expected {want['kty']!r}")
    for m, v in want.items():
        if m in ("kty", "key_ops"):
            continue
        g = got.get(m)
        if g == v:
            continue
        if isinstance(g, str) and m != "crv":
            try:
                same = int.from_bytes(b64u_dec(g), "big") == int.from_bytes(b64u_dec(v), "big")
            except Exception:  # noqa: BLE001 - malformed member: reported below
                same = False
            if same:
                diffs.append(f"member {m}: same number, different encoding (length "
                             f"{len(b64u_dec(g))}, expected {len(b64u_dec(v))})")
                continue
        diffs.append(f"member {m} differs" if g is not None else f"member {m} missing")
    if "key_ops" in got and sorted(got["key_ops"]) != sorted(want["key_ops"]):
        diffs.append(f"key_ops {got['key_ops']}, expected {want['key_ops']}")
    return "; ".join(diffs)


def remember_secrets(jwk, label):
    for m in ("d", "p", "q", "dp", "dq", "qi", "k"):
        if m in jwk:
            SECRETS[f"{label} member {m}"] = jwk[m]


def verify_report_signature(report):
    """ECDSA P-384 over bytes 0..0x29F with the VCEK of the security context (THIM JSON)."""
    vcek = x509.load_pem_x509_certificate(THIM["vcekCert"].encode())
    r = int.from_bytes(report[0x2A0:0x2A0 + 72], "little")
    s = int.from_bytes(report[0x2A0 + 72:0x2A0 + 144], "little")
    vcek.public_key().verify(encode_dss_signature(r, s), report[:0x2A0],
                             ec.ECDSA(hashes.SHA384()))


def maa_cert_for(token):
    st, body = call("GET", EP["maa"] + "/certs")
    kid = json.loads(b64u_dec(token.split(".")[0]))["kid"]
    key = next(k for k in json.loads(body)["keys"] if k["kid"] == kid)
    return x509.load_der_x509_certificate(base64.b64decode(key["x5c"][0]))


def verify_maa_token(token):
    h, p, s = token.split(".")
    maa_cert_for(token).public_key().verify(b64u_dec(s), f"{h}.{p}".encode(), padding.PKCS1v15(),
                                            hashes.SHA256())


def closed_port():
    """A loopback port nothing listens on (bound, then closed)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---- skrd ----------------------------------------------------------------------------------

class Skrd:
    """One skrd process on a free loopback port, trace-logging to WORK/<name>.log."""

    def __init__(self, name, extra=(), env_extra=None, imds=None, socket_path=None):
        self.name = name
        self.port = closed_port()
        self.log = os.path.join(WORK, name + ".log")
        LOGS.append(self.log)
        self.out = open(os.path.join(WORK, name + ".out"), "wb")
        args = [PROG, "--snp-device", "emulated:" + DIR, "--imds-endpoint", imds or EP["imds"],
                "--ca-file", os.path.join(DIR, "ca.pem"), "--port", str(self.port),
                "-loglevel", "trace", "-logfile", self.log]
        if SLOW:
            args += ["--release-deadline-ms", str(SLOW_DEADLINE_MS)]
        args += list(extra)
        if socket_path:
            args += ["--socket", socket_path]
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("AZURE_", "SKR_", "UVM_")) and k not in
               ("SkrSideCarArgs", "Port", "LogLevel", "LogFile")}
        env["UVM_SECURITY_CONTEXT_DIR"] = SC
        env.update(env_extra or {})
        self.args = args
        self.proc = subprocess.Popen(args, stdout=self.out, stderr=subprocess.STDOUT, env=env)
        CHILDREN.append(self.proc)
        self.ready = self._wait_ready()

    def _wait_ready(self):
        deadline = time.time() + 60 * WAIT
        while time.time() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                st, _, _ = self.request("GET", "/status", timeout=5)
                if st == 200:
                    return True
            except OSError:
                pass
            time.sleep(0.1)
        return False

    def output(self):
        self.out.flush()
        try:
            return open(os.path.join(WORK, self.name + ".out"), errors="replace").read()[-3000:]
        except OSError:
            return ""

    def request(self, method, path, body=None, headers=None, timeout=120 * WAIT):
        """(status, headers dict, raw body); body may be bytes, str or a JSON-able object."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        hdrs = dict(headers or {})
        if body is not None:
            hdrs.setdefault("Content-Type", "application/json")
        try:
            conn.request(method, path, body=body, headers=hdrs)
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()

    def json(self, method, path, body=None, headers=None):
        """(status, parsed JSON or None, raw body); a connection that ends without an answer
        is status 0 with the error as the body, so that one check fails, not the run."""
        try:
            st, hdrs, raw = self.request(method, path, body, headers)
        except (OSError, http.client.HTTPException) as e:
            return 0, None, f"no answer: {e!r}".encode()
        try:
            doc = json.loads(raw) if raw else None
        except ValueError:
            doc = None
        return st, doc, raw

    def release(self, kid, access_token=None, maa=None, akv=None):
        body = {"maa_endpoint": maa or host_of(EP["maa"]), "akv_endpoint": akv or host_of(EP["akv"]),
                "kid": kid}
        if access_token is not None:
            body["access_token"] = access_token
        return self.json("POST", "/key/release", body)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30 * WAIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return False, f"did not stop within {30 * WAIT} s of SIGTERM"
        rc = self.proc.returncode
        return rc == 0, f"exit status {rc}"


def start(name, desc, **kw):
    d = Skrd(name, **kw)
    check(d.ready, f"{desc}: skrd ready on /status", " ".join(d.args) + "\n" + d.output())
    return d


def stop(d, desc):
    good, why = d.stop()
    check(good, f"{desc}: skrd stops cleanly on SIGTERM", why + "\n" + d.output())


def released_jwk(st, doc, raw):
    """The JWK of a /key/release answer, or raise with what is wrong."""
    if st != 200:
        raise RuntimeError(f"status {st}: {raw[:400]!r}")
    if not isinstance(doc, dict) or not isinstance(doc.get("key"), str):
        raise RuntimeError(f"no string 'key' member: {raw[:200]!r}")
    return json.loads(doc["key"])


def check_release(d, name, want, desc, **kw):
    st, doc, raw = d.release(name, **kw)
    try:
        got = released_jwk(st, doc, raw)
    except Exception as e:  # noqa: BLE001 - reported as a failed check
        return not_ok(desc, str(e))
    remember_secrets(got, desc)
    diff = compare_jwk(got, want)
    return check(diff == "", desc, diff)


def err_text(doc):
    if not isinstance(doc, dict):
        return ""
    return " ".join(str(doc.get(k, "")) for k in ("error", "hint", "code", "stage"))


def check_error(res, status, desc, words=(), stage=None, upstream=None):
    """An error answer: status, {"error": non-empty string}, any of words (case-insensitive) in
    error/hint/code, and stage / upstream_status when given."""
    st, doc, raw = res
    problems = []
    if st != status:
        problems.append(f"status {st}, expected {status}")
    if not isinstance(doc, dict) or not isinstance(doc.get("error"), str) or not doc["error"]:
        problems.append("body is not {\"error\": \"...\"}")
    else:
        text = err_text(doc).lower()
        if words and not any(w.lower() in text for w in words):
            problems.append(f"message names none of {list(words)}")
        if stage is not None and doc.get("stage") != stage:
            problems.append(f"stage {doc.get('stage')!r}, expected {stage!r}")
        if upstream is not None and doc.get("upstream_status") != upstream:
            problems.append(f"upstream_status {doc.get('upstream_status')!r}, expected {upstream}")
    return check(not problems, desc, "; ".join(problems) + f"\nbody: {raw[:600]!r}")


# ---- log hygiene ---------------------------------------------------------------------------

JWT_RE = re.compile(rb"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}")
PRIV_RE = re.compile(rb'"(d|p|q|dp|dq|qi|k)"\s*:\s*"[A-Za-z0-9_-]{16,}')
PEM_RE = re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----")


def logs_text():
    """Every skrd log written so far (LOGS), concatenated; a missing one is skipped."""
    text = b""
    for f in LOGS:
        try:
            text += open(f, "rb").read()
        except OSError:
            pass
    return text


def check_logs():
    text = logs_text()
    lines = text.count(b"\n")
    check(lines >= 20, f"trace logs were written ({lines} lines over {len(LOGS)} skrd runs)",
          "a log hygiene check over an empty log proves nothing")
    leaks = [label for label, v in SECRETS.items() if v and v.encode() in text]
    check(not leaks and SECRETS, f"no released key member, MAA token or bearer token in the trace "
          f"logs ({len(SECRETS)} known secrets searched)", "found: " + ", ".join(leaks[:10]))
    found = [m.group(0)[:40] + b"..." for m in JWT_RE.finditer(text)][:3]
    check(not found, "no JWT-shaped string (MAA token, bearer token) in the trace logs",
          repr(found))
    found = [m.group(0)[:12] + b"..." for m in PRIV_RE.finditer(text)][:3]
    check(not found, "no private JWK member (d, p, q, dp, dq, qi, k) in the trace logs",
          repr(found))
    check(not PEM_RE.search(text), "no PEM private key (transfer key) in the trace logs")


# ---- e2e -----------------------------------------------------------------------------------

def routes_success(d, bearer):
    # /status
    st, doc, raw = d.json("GET", "/status")
    check(st == 200 and isinstance(doc, dict) and str(doc.get("message", "")).lower() ==
          "status ok", "GET /status: 200 {\"message\": \"Status OK\"}", raw[:200])

    # /attest/raw: REPORT_DATA = SHA-256(runtime data), rest zero, signed by the VCEK
    rt = os.urandom(77)
    st, doc, raw = d.json("POST", "/attest/raw", {"runtime_data": b64(rt)})
    report = b""
    try:
        report = bytes.fromhex(doc["report"])
    except Exception:  # noqa: BLE001
        pass
    check(st == 200 and len(report) == 1184, "POST /attest/raw: 200 with a 1184-byte hex report",
          raw[:300])
    if len(report) == 1184:
        check(report[0x50:0x70] == hashlib.sha256(rt).digest() and report[0x70:0x90] == bytes(32),
              "/attest/raw: REPORT_DATA = SHA-256(runtime data) || 32 zero bytes")
        check(report[0xC0:0xE0].hex() == HOST_DATA,
              "/attest/raw: HOST_DATA = SHA-256(security policy)")
        try:
            verify_report_signature(report)
            ok("/attest/raw: report signature verifies with the security context's VCEK")
        except Exception as e:  # noqa: BLE001
            not_ok("/attest/raw: report signature verifies with the security context's VCEK",
                   repr(e))
    st, doc, raw = d.json("POST", "/attest/raw", {"runtime_data": b64(rt)})
    try:
        again = bytes.fromhex(doc["report"])
    except Exception:  # noqa: BLE001
        again = b""
    check(st == 200 and again[0x50:0x70] == hashlib.sha256(rt).digest(),
          "/attest/raw: a second call for the same runtime data binds it again")

    # /attest/combined
    rt = json.dumps({"purpose": "combined", "nonce": b64u(os.urandom(8))}).encode()
    st, doc, raw = d.json("POST", "/attest/combined", {"runtime_data": b64(rt)})
    check(st == 200 and isinstance(doc, dict) and all(k in doc for k in (
        "endorsed_tcb", "endorsements", "evidence", "uvm_endorsements")),
        "POST /attest/combined: 200 with endorsed_tcb, endorsements, evidence, uvm_endorsements",
        raw[:300])
    if st == 200 and isinstance(doc, dict):
        try:
            ev = base64.b64decode(doc["evidence"], validate=True)
            check(len(ev) == 1184 and ev[0x50:0x70] == hashlib.sha256(rt).digest(),
                  "/attest/combined: evidence is the standard-base64 report bound to the data")
            verify_report_signature(ev)
            ok("/attest/combined: evidence signature verifies with the VCEK")
        except Exception as e:  # noqa: BLE001
            not_ok("/attest/combined: evidence decodes and verifies", repr(e))
        try:
            pem = base64.b64decode(doc["endorsements"], validate=True)
            certs = x509.load_pem_x509_certificates(pem)
            vcek = x509.load_pem_x509_certificate(THIM["vcekCert"].encode())
            check(len(certs) >= 3 and certs[0] == vcek,
                  "/attest/combined: endorsements = PEM chain VCEK, ASK, ARK (VCEK first)",
                  f"{len(certs)} certificates")
        except Exception as e:  # noqa: BLE001
            not_ok("/attest/combined: endorsements decode to a PEM chain", repr(e))
        check(str(doc["endorsed_tcb"]).lower() == str(THIM["tcbm"]).lower(),
              "/attest/combined: endorsed_tcb = the THIM tcbm",
              f"{doc['endorsed_tcb']!r} vs {THIM['tcbm']!r}")
        check(doc["uvm_endorsements"] == REFERENCE_INFO,
              "/attest/combined: uvm_endorsements = reference-info-base64 verbatim")

    # /attest/maa
    rt_obj = {"keys": [{"kty": "oct", "kid": "e2e-runtime", "k": "AA"}], "nonce": 7}
    rt = json.dumps(rt_obj).encode()
    st, doc, raw = d.json("POST", "/attest/maa",
                          {"maa_endpoint": host_of(EP["maa"]), "runtime_data": b64(rt)})
    token = doc.get("token") if isinstance(doc, dict) else None
    check(st == 200 and isinstance(token, str) and token.count(".") == 2,
          "POST /attest/maa: 200 {\"token\": JWT}", raw[:300])
    if isinstance(token, str):
        SECRETS["MAA token from /attest/maa"] = token
        SECRETS["MAA token signature"] = token.split(".")[2]
        claims = jwt_claims(token)
        check(claims.get("x-ms-runtime") == rt_obj,
              "/attest/maa: x-ms-runtime equals the runtime data", json.dumps(claims)[:400])
        check(claims.get("x-ms-sevsnpvm-hostdata") == HOST_DATA and claims.get("iss") == EP["maa"],
              "/attest/maa: hostdata = SHA-256(policy), issuer = the MAA endpoint")
        try:
            verify_maa_token(token)
            ok("/attest/maa: token signature verifies with the MAA /certs key")
        except Exception as e:  # noqa: BLE001
            not_ok("/attest/maa: token signature verifies with the MAA /certs key", repr(e))
    return token


def bad_input(d):
    """Every route, every kind of bad input: a clear 4xx naming the problem, never a crash."""
    for route in ("/attest/raw", "/attest/combined", "/attest/maa"):
        maa = {"maa_endpoint": host_of(EP["maa"])} if route == "/attest/maa" else {}
        cases = [
            ("not JSON", b"{runtime_data:", ["json"]),
            ("empty body", b"", ["json", "body", "empty", "runtime_data"]),
            ("a JSON array", b"[1,2]", ["object", "json"]),
            ("missing runtime_data", dict(maa), ["runtime_data"]),
            ("runtime_data a number", dict(maa, runtime_data=5), ["runtime_data"]),
            ("runtime_data null", dict(maa, runtime_data=None), ["runtime_data"]),
            ("runtime_data not base64", dict(maa, runtime_data="@@not base64@@"), ["base64"]),
            ("duplicate member", b'{"runtime_data":"AA==","runtime_data":"AA=="}',
             ["duplicate", "runtime_data", "json"]),
        ]
        if route == "/attest/maa":
            rt = b64(b'{"a":1}')
            cases += [
                ("missing maa_endpoint", {"runtime_data": rt}, ["maa_endpoint"]),
                ("maa_endpoint a number", {"runtime_data": rt, "maa_endpoint": 3},
                 ["maa_endpoint"]),
                ("maa_endpoint with a path", {"runtime_data": rt,
                                              "maa_endpoint": host_of(EP["maa"]) + "/x?y"},
                 ["maa_endpoint", "endpoint", "path"]),
                ("maa_endpoint with another scheme", {"runtime_data": rt,
                                                      "maa_endpoint": "ftp://example.com"},
                 ["maa_endpoint", "endpoint", "scheme"]),
                ("runtime_data that is not JSON",
                 {"runtime_data": b64(b"\x00\x01binary"), "maa_endpoint": host_of(EP["maa"])},
                 ["json", "runtime_data"]),
            ]
        for what, body, words in cases:
            check_error(d.json("POST", route, body), 400, f"{route}: {what} -> 400", words)
    rel = {"maa_endpoint": host_of(EP["maa"]), "akv_endpoint": host_of(EP["akv"]),
           "kid": "skrd-oct"}
    cases = [
        ("not JSON", b"kid=skrd-oct", ["json"]),
        ("a JSON string", b'"kid"', ["object", "json"]),
        ("empty object", {}, ["maa_endpoint", "akv_endpoint", "kid"]),
        ("missing kid", {k: v for k, v in rel.items() if k != "kid"}, ["kid"]),
        ("missing akv_endpoint", {k: v for k, v in rel.items() if k != "akv_endpoint"},
         ["akv_endpoint"]),
        ("missing maa_endpoint", {k: v for k, v in rel.items() if k != "maa_endpoint"},
         ["maa_endpoint"]),
        ("kid a number", dict(rel, kid=12), ["kid"]),
        ("kid empty", dict(rel, kid=""), ["kid"]),
        ("kid with bad characters", dict(rel, kid="../../keys/x y"), ["kid", "key name"]),
        ("akv_endpoint a list", dict(rel, akv_endpoint=["a"]), ["akv_endpoint"]),
        ("akv_endpoint with userinfo", dict(rel, akv_endpoint="user@" + host_of(EP["akv"])),
         ["akv_endpoint", "endpoint", "userinfo"]),
        ("maa_endpoint with whitespace", dict(rel, maa_endpoint="a b"),
         ["maa_endpoint", "endpoint", "whitespace"]),
        ("access_token a number", dict(rel, access_token=1), ["access_token"]),
    ]
    for what, body, words in cases:
        check_error(d.json("POST", "/key/release", body), 400, f"/key/release: {what} -> 400",
                    words)
    # routes and methods
    check_error(d.json("GET", "/nope"), 404, "GET /nope -> 404")
    check_error(d.json("POST", "/key/release/extra", rel), 404, "POST /key/release/extra -> 404")
    for method, path in (("GET", "/key/release"), ("DELETE", "/attest/raw"), ("POST", "/status"),
                         ("PUT", "/attest/maa"), ("GET", "/attest/combined")):
        check_error(d.json(method, path, None if method == "GET" else rel), 405,
                    f"{method} {path} -> 405")
    # limits
    big = json.dumps({"runtime_data": "A" * (70 * 1024)}).encode()
    check_error(d.json("POST", "/attest/raw", big), 413, "a 70 KiB body -> 413")
    try:
        st, _, _ = d.request("GET", "/status", headers={"X-Big": "x" * (64 * 1024)})
        check(400 <= st < 500, f"a 64 KiB header -> 4xx ({st})")
    except (OSError, http.client.HTTPException) as e:
        ok(f"a 64 KiB header: connection closed by the server ({type(e).__name__})")
    st, _, _ = d.request("GET", "/status")
    check(st == 200 and d.proc.poll() is None, "skrd still serves after all the bad input")


def release_failures(d, bearer, keys):
    # policy mismatch: a key whose policy wants another HOST_DATA
    import_key(bearer, "skrd-deny-hostdata", keys["skrd-oct"][0], release_policy("00" * 32))
    check_error(d.release("skrd-deny-hostdata"), 403,
                "policy mismatch: 403 naming x-ms-sevsnpvm-hostdata",
                ["x-ms-sevsnpvm-hostdata"], stage="akv", upstream=403)
    # unknown key
    check_error(d.release("skrd-no-such-key"), 403, "unknown key: 403 with upstream_status 404",
                ["not found", "skrd-no-such-key", "404"], stage="akv", upstream=404)
    # missing permission (1): a key that is not exportable
    import_key(bearer, "skrd-not-exportable", keys["skrd-oct"][0], None, exportable=False)
    check_error(d.release("skrd-not-exportable"), 403,
                "non-exportable key: 403 naming exportable (AKV 400)", ["exportable"],
                stage="akv", upstream=400)
    # missing permission (2): an identity without the release permission (a workload identity
    # client the emulator knows but did not grant release)
    extra = EMU_CFG.get("workload_client_ids", [])
    if extra:
        tok = entra_token(extra[0])
        SECRETS["unauthorised caller access_token"] = tok
        check_error(d.release("skrd-oct", access_token=tok), 403,
                    "caller without release permission: 403 with upstream_status 403",
                    ["not allowed", "permission", "release"], stage="akv", upstream=403)
    else:
        not_ok("caller without release permission", "emu.json has no workload_client_ids")
    # wrong MAA: the key trusts another attestation authority
    other = "https://sharedeus2.eus2.attest.azure.net"
    import_key(bearer, "skrd-other-authority", keys["skrd-oct"][0],
               release_policy(authority=other))
    check_error(d.release("skrd-other-authority"), 403,
                "MAA that is not the key's authority: 403 naming the authority",
                ["authority"], stage="akv", upstream=403)
    # expired and invalid caller tokens
    tok = forged_entra_token(-7200)
    SECRETS["expired caller access_token"] = tok
    check_error(d.release("skrd-oct", access_token=tok), 403,
                "expired access_token: 403 with upstream_status 401", ["expired", "401", "token"],
                stage="akv", upstream=401)
    tok = forged_entra_token(3600)[:-8] + "AAAAAAAA"
    SECRETS["tampered caller access_token"] = tok
    check_error(d.release("skrd-oct", access_token=tok), 403,
                "access_token with a bad signature: 403 with upstream_status 401",
                ["401", "token", "signature"], stage="akv", upstream=401)
    check_error(d.release("skrd-oct", access_token="not-a-token"), 403,
                "access_token that is not a JWT: 403 with upstream_status 401",
                ["401", "token"], stage="akv", upstream=401)
    # services down: a closed port, fails fast with the stage named
    for stage, kw in (("maa", {"maa": f"127.0.0.1:{closed_port()}"}),
                      ("akv", {"akv": f"127.0.0.1:{closed_port()}"})):
        t0 = time.time()
        res = d.release("skrd-oct", **kw)
        el = time.time() - t0
        check_error(res, 403, f"{stage.upper()} down: release fails with stage {stage}",
                    [stage, "connect", "refused", "unreachable"], stage=stage)
        timing_check(el < 15, f"{stage.upper()} down: fails in {el:.1f} s, well under the 30 s "
                     "deadline")
    t0 = time.time()
    res = d.json("POST", "/attest/maa", {"maa_endpoint": f"127.0.0.1:{closed_port()}",
                                         "runtime_data": b64(b'{"a":1}')})
    el = time.time() - t0
    check_error(res, 403, "/attest/maa with MAA down: 403 with stage maa",
                ["maa", "connect", "refused"], stage="maa")
    timing_check(el < 15, f"/attest/maa with MAA down: fails in {el:.1f} s")


def tampered_report(d):
    """The device is trusted, so a tampered report cannot be sent through skrd; MAA (the
    emulator) must refuse a report from skrd that does not match the runtime data, or that was
    altered."""
    rt = json.dumps({"keys": [], "purpose": "tamper"}).encode()
    st, doc, raw = d.json("POST", "/attest/combined", {"runtime_data": b64(rt)})
    if st != 200:
        return not_ok("tampered report: /attest/combined for the evidence", raw[:200])
    report = base64.b64decode(doc["evidence"])
    chain = base64.b64decode(doc["endorsements"])

    def attest(rep, runtime):
        bundle = json.dumps({"SnpReport": b64u(rep), "VcekCertChain": b64u(chain)}).encode()
        return call("POST", EP["maa"] + "/attest/SevSnpVm?api-version=2022-08-01",
                    {"report": b64u(bundle), "runtimeData": {"data": b64u(runtime),
                                                             "dataType": "JSON"},
                     "initTimeData": {"data": b64u(POLICY_TEXT), "dataType": "Binary"}})
    st, body = attest(report, rt)
    check(st == 200, "skrd's report (/attest/combined) attests at MAA as is", body[:200])
    st, body = attest(report, json.dumps({"keys": [], "purpose": "other"}).encode())
    check(st == 400 and b"report_data" in body.lower(),
          "MAA refuses skrd's report with other runtime data, naming REPORT_DATA", body[:300])
    bad = bytearray(report)
    bad[0x90] ^= 1  # MEASUREMENT
    st, body = attest(bytes(bad), rt)
    check(st == 400 and b"signature" in body.lower(),
          "MAA refuses a tampered report (one MEASUREMENT bit), naming the signature", body[:300])


def concurrent_releases(d, name, want, n=8):
    def one(_):
        st, doc, raw = d.release(name)
        try:
            got = released_jwk(st, doc, raw)
        except Exception as e:  # noqa: BLE001
            return str(e)
        remember_secrets(got, "concurrent")
        return compare_jwk(got, want) or "same"
    with ThreadPoolExecutor(max_workers=n) as pool:
        res = list(pool.map(one, range(n)))
    check(res == ["same"] * n, f"{n} concurrent releases through skrd: all the imported key",
          "\n".join(res))


def mode_e2e():
    bearer = imds_token()
    keys = make_keys()
    for name, (imp, want) in keys.items():
        import_key(bearer, name, imp, release_policy())
        remember_secrets(want, f"imported {name}")
    ok("RSA-HSM 2048, EC-HSM P-384 and oct-HSM 256 keys made in Python, imported with a policy "
       "on HOST_DATA")
    SECRETS["IMDS bearer (python's)"] = bearer

    d = start("skrd-256", "RSA_AES_KEY_WRAP_256", extra=["--release-enc", "RSA_AES_KEY_WRAP_256",
                                                          "--release-deadline-ms",
                                                          str(deadline_ms(30000)),
                                                          "--retries", "2"])
    if d.ready:
        routes_success(d, bearer)
        for name, (_, want) in keys.items():
            check_release(d, name, want, f"release {want['kty']} ({name}) with "
                          "RSA_AES_KEY_WRAP_256: the imported key")
        concurrent_releases(d, "skrd-rsa", keys["skrd-rsa"][1])
        release_failures(d, bearer, keys)
        tampered_report(d)
        bad_input(d)
    stop(d, "RSA_AES_KEY_WRAP_256")

    for enc, extra in (("RSA_AES_KEY_WRAP_384", []),
                       ("CKM_RSA_AES_KEY_WRAP", ["--pool-size", "0"])):
        d = start("skrd-" + enc, enc, extra=["--release-enc", enc] + extra)
        if d.ready:
            for name, (_, want) in keys.items():
                check_release(d, name, want, f"release {want['kty']} ({name}) with {enc}"
                              + (" (--pool-size 0)" if extra else "") + ": the imported key")
        stop(d, enc)

    # reuse window: one transfer key and MAA token for several releases
    d = start("skrd-reuse", "--reuse-window 60", extra=["--reuse-window", "60"])
    if d.ready:
        for i in range(2):
            for name, (_, want) in keys.items():
                check_release(d, name, want, f"--reuse-window 60, round {i + 1}: {name}")
    stop(d, "--reuse-window 60")

    # workload identity instead of IMDS: IMDS is a closed port, so the token can only come from
    # the emulated Entra (AZURE_AUTHORITY_HOST); also a Unix socket
    fed = os.path.join(WORK, "federated-token")
    open(fed, "w").write(federated_assertion())
    wi_env = {"AZURE_CLIENT_ID": EMU_CFG["managed_identity"]["client_id"],
              "AZURE_TENANT_ID": EMU_CFG["tenant_id"], "AZURE_FEDERATED_TOKEN_FILE": fed,
              "AZURE_AUTHORITY_HOST": EP["imds"]}
    sock = os.path.join(WORK, "skrd.sock")
    d = start("skrd-wi", "workload identity", env_extra=wi_env,
              imds=f"http://127.0.0.1:{closed_port()}", socket_path=sock)
    if d.ready:
        for name in ("skrd-oct", "skrd-rsa"):
            check_release(d, name, keys[name][1], f"workload identity (IMDS down): release {name}")
        try:
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(10)
            s.connect(sock)
            s.sendall(b"GET /status HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            s.close()
            check(data.startswith(b"HTTP/1.1 200") and b"status ok" in data.lower(),
                  "--socket: GET /status over the Unix socket", data[:200])
        except OSError as e:
            not_ok("--socket: GET /status over the Unix socket", repr(e))
    stop(d, "workload identity")
    extra = EMU_CFG.get("workload_client_ids", [])
    if extra:
        d = start("skrd-wi-denied", "workload identity without release permission",
                  env_extra=dict(wi_env, AZURE_CLIENT_ID=extra[0]),
                  imds=f"http://127.0.0.1:{closed_port()}")
        if d.ready:
            check_error(d.release("skrd-oct"), 403,
                        "workload identity without release permission: 403, upstream 403",
                        ["not allowed", "permission"], stage="akv", upstream=403)
        stop(d, "workload identity without release permission")
    check_logs()


# ---- faults --------------------------------------------------------------------------------

def mode_faults():
    emu_pid = int(sys.argv[5])
    bearer = None
    for _ in range(30):  # the emulator injects faults into our own calls too
        try:
            bearer = imds_token()
            break
        except Exception:  # noqa: BLE001
            time.sleep(0.2)
    keys = make_keys()
    for name, (imp, want) in keys.items():
        for attempt in range(30):
            try:
                import_key(bearer, name, imp, release_policy())
                break
            except Exception:  # noqa: BLE001
                if attempt == 29:
                    raise
                time.sleep(0.2)
    ok("keys imported (through the faults, retried by the test)")
    failed = 0
    for _ in range(30):
        try:
            failed += call("GET", EP["maa"] + "/certs", timeout=10)[0] != 200
        except OSError:
            failed += 1
    check(failed > 0, f"the emulator injects faults: {failed} of 30 probes of MAA /certs failed")
    dl_ms = deadline_ms(30000)
    d = start("skrd-faults", "faults", extra=[
        "--retries", "8", "--release-deadline-ms", str(dl_ms), "--timeout-ms", "5000",
        "--connect-timeout-ms", "2000"])
    if not d.ready:
        return
    names = list(keys)

    def one(i):
        name = names[i % len(names)]
        t0 = time.time()
        st, doc, raw = d.release(name)
        el = time.time() - t0
        try:
            got = released_jwk(st, doc, raw)
        except Exception as e:  # noqa: BLE001
            return f"release {i} ({name}) after {el:.1f} s: {e}", el
        remember_secrets(got, "faults")
        diff = compare_jwk(got, keys[name][1])
        return (f"release {i} ({name}): {diff}" if diff else ""), el
    t0 = time.time()
    with ThreadPoolExecutor(max_workers=4) as pool:
        res = list(pool.map(one, range(20)))
    wall = time.time() - t0
    errs = [r for r, _ in res if r]
    slowest = max(el for _, el in res)
    check(not errs, f"20 releases through 500/503/429/delay/drop faults: all succeed with the "
          f"imported key ({wall:.1f} s in all)", "\n".join(errs))
    timing_check(slowest < dl_ms / 1000, f"every release within its deadline (slowest "
                 f"{slowest:.1f} s of {dl_ms / 1000:.0f} s)")

    stop(d, "faults")

    # the emulator stops: releases fail fast, naming the upstream stage and service
    os.kill(emu_pid, signal.SIGTERM)
    for _ in range(100):
        if not os.path.exists(os.path.join(DIR, "endpoints.json")):
            break
        time.sleep(0.1)
    check(not os.path.exists(os.path.join(DIR, "endpoints.json")), "the emulator stopped")
    d = start("skrd-down", "emulator stopped, default retries", extra=[
        "--release-deadline-ms", str(dl_ms)])
    if d.ready:
        for name in names:
            t0 = time.time()
            res = d.release(name)
            el = time.time() - t0
            check_error(res, 403, f"emulator stopped, release {name}: 403 naming the service",
                        ["maa", "akv", "imds", "connect"])
            stage = res[1].get("stage") if isinstance(res[1], dict) else None
            check(stage in ("maa", "akv", "identity"), f"emulator stopped: stage {stage!r} is an "
                  "upstream stage")
            timing_check(el < dl_ms / 3000, f"emulator stopped: fails in {el:.1f} s, well "
                         f"under the {dl_ms / 1000:.0f} s deadline")
    stop(d, "emulator stopped, default retries")

    # the release deadline bounds a release even when one call's retries would outlast it
    short = 3000
    d = start("skrd-deadline", "emulator stopped, --retries 8", extra=[
        "--retries", "8", "--release-deadline-ms", str(short)])
    if d.ready:
        t0 = time.time()
        res = d.release(names[0])
        el = time.time() - t0
        check_error(res, 403, "emulator stopped, --retries 8: 403 naming an upstream stage",
                    ["maa", "akv", "imds", "connect", "deadline"])
        timing_check(el < short / 1000 + 2, f"--release-deadline-ms {short} with --retries 8 and the "
              f"emulator stopped: the release ends within its deadline ({el:.1f} s)",
              "the deadline is only checked between stages: one HTTP call's retries (backoff "
              "up to 10 s each) run past it")
    stop(d, "emulator stopped, --retries 8")
    check_logs()


# ---- example -------------------------------------------------------------------------------

def mode_example():
    bearer = imds_token()
    keys = make_keys()
    for name, (imp, want) in keys.items():
        import_key(bearer, name, imp, release_policy())
    import_key(bearer, "skrd-deny-hostdata", keys["skrd-oct"][0], release_policy("00" * 32))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "SKR_", "UVM_"))}
    base = [PROG, "--snp-device", "emulated:" + DIR, "--security-context-dir", SC,
            "--imds-endpoint", EP["imds"], "--ca-file", os.path.join(DIR, "ca.pem"),
            "--maa-endpoint", host_of(EP["maa"]), "--akv-endpoint", host_of(EP["akv"])]

    def run(args):
        p = subprocess.run(args, capture_output=True, env=env, timeout=120)
        return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")

    for name in ("skrd-oct", "skrd-rsa", "skrd-ec"):
        want = keys[name][1]
        args = base + ["--kid", name]
        rc, out, err = run(args)
        if not check(rc == 0, f"custom-app releases {name}", " ".join(args) + "\n" + out + err):
            continue
        check(re.search(rf"^kty: {want['kty']}$", out, re.M),
              f"custom-app prints kty {want['kty']} for {name}", out)
        fp = example_fingerprint(want)
        check(re.search(rf"^sha256-fingerprint.*: {fp}$", out, re.M),
              f"custom-app prints {name}'s SHA-256 (RFC 7638) fingerprint, as Python computes it",
              f"expected {fp}\n{out}")
        leaks = [m for m in ("d", "p", "q", "k") if m in want and want[m] in out + err]
        check(not leaks, f"custom-app does not print {name}'s private members", leaks)
    rc, out, err = run(base + ["--kid", "skrd-oct", "--releases", "3"])
    check(rc == 0 and out.count(example_fingerprint(keys["skrd-oct"][1])) == 3,
          "custom-app --releases 3: three releases of the same key", out + err)
    rc, out, err = run(base + ["--kid", "skrd-deny-hostdata"])
    check(rc == 1 and "x-ms-sevsnpvm-hostdata" in err and "stage akv" in err,
          "custom-app, key whose policy wants another HOST_DATA: exit 1 naming the claim",
          f"exit {rc}\n{out}{err}")
    rc, out, err = run(base + ["--kid", "skrd-no-such-key"])
    check(rc == 3 and "404" in err, "custom-app, unknown key: exit 3 with upstream status 404",
          f"exit {rc}\n{out}{err}")
    rc, out, err = run([PROG, "--kid", "x"])
    check(rc == 2 and "usage" in err, "custom-app without --maa/--akv: usage, exit 2",
          f"exit {rc}\n{err}")
    rc, out, err = run(base + ["--kid", "skrd-oct", "--set", "release_enc=NOPE"])
    check(rc == 2 and "release_enc" in err, "custom-app --set release_enc=NOPE: exit 2 naming "
          "the option", f"exit {rc}\n{err}")


def example_fingerprint(jwk):
    """custom-app prints skr_jwk_fingerprint: the RFC 7638 SHA-256 thumbprint in lowercase hex
    (the required members in lexicographic order, compact JSON), computed here on our own."""
    req = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y"), "oct": ("k", "kty")}
    members = {m: jwk[m] for m in req[jwk["kty"]]}
    text = json.dumps(members, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(text).hexdigest()


def main():
    try:
        {"e2e": mode_e2e, "faults": mode_faults, "example": mode_example}[MODE]()
    except Exception as e:  # noqa: BLE001 - one crash is one failed check, the rest is reported
        import traceback
        not_ok(f"driver stopped: {e!r}", traceback.format_exc())
    finally:
        for p in CHILDREN:
            if p.poll() is None:
                p.kill()
                p.wait()
    sys.exit(1 if FAILS else 0)


if __name__ == "__main__":
    main()
