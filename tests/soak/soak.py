#!/usr/bin/env python3
"""soak.py - the bounded fault soak of issue #6 (`make soak`; tests/soak/README.md).

usage: soak.py BUILD_DIR [--seconds N] [--clients N] [--json FILE] [--work DIR] [--keep]
                         [--seed N] [--retries N] [--tap]

Everything runs on loopback, in a fresh work directory:
  1. `skr-emu init`, then `skr-emu serve` with explicit IMDS/MAA/AKV ports and about 30% of
     every service's requests failed (500, 503, 429 with Retry-After, dropped connections; 10%
     more delayed). An oct-HSM and an RSA-HSM key made here are imported with a release policy
     bound to the emulated platform's HOST_DATA.
  2. skrd (`--snp-device emulated:DIR`, sandbox on) with --retries 2 (so that the error path
     is soaked too), warmed up by the clients, then idle past its malloc_trim interval: file
     descriptors, threads and memory are read from /proc.
  3. N clients (default 8) post /key/release back to back for --seconds (default 300); at the
     half-way point the emulator is killed (SIGKILL) and started again on the same ports (the
     keys persist in DIR). Every 200 must carry exactly the imported key (k, or n and d).
  4. Idle again past the trim interval: /proc is read again; then SIGTERM, exit status 0.
  5. Scenario (a): the emulator stopped, a fresh skrd with --release-deadline-ms 3000 and
     --retries 8: every release fails with a stage-named upstream error within its deadline.
  6. Scenario (b): skrd (TCP port and Unix socket) SIGKILLed with releases in flight and
     started again with the same arguments: it serves again (both listeners, a release on
     each) with no manual step; SIGTERM then exits 0 and removes the socket.

Prints a table and writes a JSON summary (--json, default BUILD_DIR/soak.json). Exit status:
0 when every must-be-0 number is 0 (wrong keys, unclear failures, crashes or unclean exits,
fd leaks, secrets in skrd's log, scenario failures), 1 otherwise, 2 on bad usage. Timing
(deadline overruns, latency) and memory growth are reported as findings, never as failures:
this machine is shared and noisy. With --tap the checks are also printed as "ok - ..." /
"not ok - ..." lines (tests/cli/test_soak_short.sh runs this with a short --seconds).

Python 3 standard library plus pyca/cryptography (RSA key generation; a base dependency of the
test suite, scripts/install-deps).
"""
import argparse
import base64
import hashlib
import http.client
import json
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

MAX_SECONDS = 480  # with set-up and the scenarios, the soak stays under 10 minutes
TRIM_WAIT_S = 6.5  # skrd's malloc_trim interval (SKRD_TRIM_INTERVAL_S, 5 s) plus margin
RSS_TOLERANCE_KIB = 1024  # RssAnon growth, start to end, flagged as a finding beyond this
UPSTREAM_STAGES = ("identity", "maa", "akv", "certs")
STAGES = UPSTREAM_STAGES + ("input", "device", "verify", "unwrap", "config", "internal")
# about 29% of requests fail (1 - 0.9 * 0.9 * 0.92 * 0.95), 10% are delayed
FAULTS = ["all:status:0.10:500", "all:status:0.10:503", "all:status:0.08:429",
          "all:drop:0.05", "all:delay:0.10:250"]
SCENARIO_A_DEADLINE_MS = 3000
SCENARIO_A_SLACK_S = 2.0
MAIN_DEADLINE_MS = 30000  # skrd's default --release-deadline-ms, passed explicitly


def usage_error(msg):
    print(f"soak.py: {msg}", file=sys.stderr)
    sys.exit(2)


def parse_args():
    env = os.environ
    p = argparse.ArgumentParser(prog="soak.py", description="skrd fault soak (issue #6)")
    p.add_argument("build")
    p.add_argument("--seconds", type=int, default=int(env.get("SOAK_SECONDS", "300") or 300))
    p.add_argument("--clients", type=int, default=int(env.get("SOAK_CLIENTS", "8") or 8))
    p.add_argument("--json", default=env.get("SOAK_JSON") or None)
    p.add_argument("--work", default=None)
    p.add_argument("--keep", action="store_true", default=env.get("SOAK_KEEP") == "1")
    p.add_argument("--seed", type=int, default=int(env.get("SOAK_SEED", "0") or 0))
    p.add_argument("--retries", type=int, default=int(env.get("SOAK_RETRIES", "2") or 2))
    p.add_argument("--tap", action="store_true")
    try:
        a = p.parse_args()
    except SystemExit as e:
        sys.exit(2 if e.code else 0)
    if not 10 <= a.seconds <= MAX_SECONDS:
        usage_error(f"--seconds {a.seconds}: must be 10..{MAX_SECONDS}")
    if not 1 <= a.clients <= 64:
        usage_error(f"--clients {a.clients}: must be 1..64")
    if not 0 <= a.retries <= 8:
        usage_error(f"--retries {a.retries}: must be 0..8")
    for prog in ("src/skrd", "src/skr-emu"):
        if not os.access(os.path.join(a.build, prog), os.X_OK):
            usage_error(f"{a.build}/{prog}: not found (build first)")
    if a.seed == 0:
        a.seed = random.SystemRandom().randrange(1, 2**31)
    if a.json is None:
        a.json = os.path.join(a.build, "soak.json")
    return a


ARGS = parse_args()
SKRD_BIN = os.path.join(ARGS.build, "src", "skrd")
EMU_BIN = os.path.join(ARGS.build, "src", "skr-emu")
WORK = ARGS.work or tempfile.mkdtemp(prefix="skr-soak-")
os.makedirs(WORK, exist_ok=True)
EMU_DIR = os.path.join(WORK, "emu")
CHECKS = []  # (ok, description, detail)
FINDINGS = []
CHILDREN = []


def say(msg=""):
    print(msg, flush=True)


def check(cond, desc, detail=""):
    CHECKS.append((bool(cond), desc, str(detail)))
    if ARGS.tap:
        say(("ok - " if cond else "not ok - ") + desc)
        if not cond:
            for line in str(detail).splitlines()[:20]:
                say(f"#   {line}")
    return bool(cond)


T_BEGIN = time.monotonic()


def phase(msg):
    say(f"# [{time.monotonic() - T_BEGIN:6.1f} s] {msg}")


def finding(msg):
    FINDINGS.append(msg)
    say(f"# FINDING: {msg}")


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def host_of(url):
    return url.split("://", 1)[1].rstrip("/")


# ---- the emulator --------------------------------------------------------------------------

class Emu:
    def __init__(self):
        self.ports = {"imds": free_port(), "maa": free_port(), "akv": free_port()}
        self.proc = None
        self.starts = 0
        self.ep = None
        self.tls = None

    def start(self, faults, seed):
        """skr-emu serve on the same three ports every time; retried while a port is busy."""
        path = os.path.join(EMU_DIR, "endpoints.json")
        for attempt in range(20):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            args = [EMU_BIN, "serve", EMU_DIR, "--imds-port", str(self.ports["imds"]),
                    "--maa-port", str(self.ports["maa"]), "--akv-port", str(self.ports["akv"]),
                    "--seed", str(seed + self.starts)]
            for f in faults:
                args += ["--fault", f]
            out = open(os.path.join(WORK, f"emu-{self.starts}.log"), "wb")
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
            CHILDREN.append(self.proc)
            self.starts += 1
            t_end = time.time() + 60
            while time.time() < t_end and self.proc.poll() is None:
                if os.path.exists(path) and os.path.getsize(path) > 0:
                    self.ep = json.load(open(path))
                    self.tls = ssl.create_default_context(cafile=os.path.join(EMU_DIR, "ca.pem"))
                    return True
                time.sleep(0.05)
            if self.proc.poll() is None:
                break
            time.sleep(0.5)  # exited (a port still busy?): try again
        return False

    def kill(self, sig=signal.SIGKILL):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return None if self.proc is None else self.proc.returncode

    def call(self, method, url, body=None, headers=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, context=self.tls if url.startswith("https") else
                                        None, timeout=30) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def retried(self, fn, what):
        """fn() -> (ok, value); the emulator faults our own calls too: up to 60 tries."""
        last = None
        for _ in range(60):
            try:
                good, val = fn()
                if good:
                    return val
                last = val
            except (OSError, http.client.HTTPException, ValueError) as e:
                last = repr(e)
            time.sleep(0.1)
        raise RuntimeError(f"{what}: gave up after 60 tries: {last!r}"[:400])


def make_keys(emu):
    from cryptography.hazmat.primitives.asymmetric import rsa

    def token():
        st, body = emu.call("GET", emu.ep["imds"] + "/metadata/identity/oauth2/token?"
                            "api-version=2018-02-01&resource=" +
                            urllib.parse.quote("https://vault.azure.net", safe=""),
                            headers={"Metadata": "true"})
        return st == 200, (json.loads(body)["access_token"] if st == 200 else body[:200])

    bearer = emu.retried(token, "IMDS token")
    sc = os.path.join(EMU_DIR, "security-context")
    host_data = hashlib.sha256(base64.b64decode(
        open(os.path.join(sc, "security-policy-base64")).read())).hexdigest()
    policy = {"version": "1.0.0", "anyOf": [{"authority": emu.ep["maa"], "allOf": [
        {"claim": "x-ms-sevsnpvm-hostdata", "equals": host_data},
        {"claim": "x-ms-sevsnpvm-is-debuggable", "equals": "false"},
        {"claim": "x-ms-attestation-type", "equals": "sevsnpvm"}]}]}
    k = os.urandom(32)
    r = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pn = r.private_numbers()
    ints = {"n": pn.public_numbers.n, "e": pn.public_numbers.e, "d": pn.d, "p": pn.p, "q": pn.q,
            "dp": pn.dmp1, "dq": pn.dmq1, "qi": pn.iqmp}
    rj = {m: b64u(v.to_bytes((v.bit_length() + 7) // 8, "big")) for m, v in ints.items()}
    ops = ["encrypt", "decrypt", "wrapKey", "unwrapKey"]
    keys = {"soak-oct": ({"kty": "oct-HSM", "k": b64u(k), "key_ops": ops},
                         {"kty": "oct", "k": k}),
            "soak-rsa": (dict(rj, kty="RSA-HSM", key_ops=ops),
                         {"kty": "RSA", "n": pn.public_numbers.n, "d": pn.d})}
    for name, (jwk, _) in keys.items():
        body = {"key": jwk, "hsm": True, "attributes": {"exportable": True},
                "release_policy": {"contentType": "application/json; charset=utf-8",
                                   "data": b64u(json.dumps(policy).encode())}}

        def imp(name=name, body=body):
            st, resp = emu.call("PUT", emu.ep["akv"] + f"/keys/{name}?api-version=7.4", body,
                                {"Authorization": "Bearer " + bearer})
            return st == 200, f"{st} {resp[:200]!r}"
        emu.retried(imp, f"import {name}")
    secrets = [b64u(k), rj["d"], rj["p"], rj["q"], bearer]
    return {name: want for name, (_, want) in keys.items()}, secrets


def b64u_int(s):
    return int.from_bytes(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)), "big")


def key_diff(got, want):
    """'' when the released JWK (parsed) is the imported key, else what differs."""
    if not isinstance(got, dict):
        return "not a JSON object"
    if got.get("kty") != want["kty"]:
        return f"kty {got.get('kty')!r}, expected {want['kty']!r}"
    try:
        if want["kty"] == "oct":
            s = got["k"]
            ok = base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)) == want["k"]
            return "" if ok else "k differs"
        bad = [m for m in ("n", "d") if b64u_int(got[m]) != want[m]]
        return f"{', '.join(bad)} differ" if bad else ""
    except (KeyError, TypeError, ValueError) as e:
        return f"malformed JWK: {e!r}"


# ---- skrd ----------------------------------------------------------------------------------

class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


class Skrd:
    def __init__(self, name, emu, extra=(), port=None, sock=None):
        self.name = name
        self.port = port or free_port()
        self.sock = sock
        self.log = os.path.join(WORK, name + ".log")
        self.args = [SKRD_BIN, "--snp-device", "emulated:" + EMU_DIR,
                     "--imds-endpoint", emu.ep["imds"], "--ca-file",
                     os.path.join(EMU_DIR, "ca.pem"), "--port", str(self.port),
                     "-loglevel", "info", "-logfile", self.log] + list(extra)
        if sock:
            self.args += ["--socket", sock]
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("AZURE_", "SKR_", "UVM_")) and k not in
                    ("SkrSideCarArgs", "Port", "LogLevel", "LogFile")}
        self.env["UVM_SECURITY_CONTEXT_DIR"] = os.path.join(EMU_DIR, "security-context")
        self.proc = None
        self.timeout = 120

    def start(self):
        out = open(os.path.join(WORK, self.name + ".out"), "ab")
        self.proc = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT,
                                     env=self.env)
        CHILDREN.append(self.proc)
        t_end = time.time() + 120
        while time.time() < t_end:
            if self.proc.poll() is not None:
                return False
            try:
                st, _, _ = self.request("GET", "/status", timeout=5)
                if st == 200:
                    return True
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.1)
        return False

    def output(self):
        try:
            return open(os.path.join(WORK, self.name + ".out"), errors="replace").read()[-2000:]
        except OSError:
            return ""

    def request(self, method, path, body=None, timeout=None, unix=False):
        t = timeout or self.timeout
        conn = (UnixHTTPConnection(self.sock, t) if unix else
                http.client.HTTPConnection("127.0.0.1", self.port, timeout=t))
        try:
            hdrs = {"Content-Type": "application/json"} if body is not None else {}
            conn.request(method, path, body=body, headers=hdrs)
            r = conn.getresponse()
            return r.status, r.getheader("Content-Type", ""), r.read()
        finally:
            conn.close()

    def stop(self):
        """SIGTERM; the exit status (None if it had to be SIGKILLed after 60 s)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return None
        return self.proc.returncode


class Result:
    __slots__ = ("t", "elapsed", "cls", "label", "detail", "stage")

    def __init__(self, t, elapsed, cls, label, detail="", stage=None):
        self.t, self.elapsed, self.cls, self.label = t, elapsed, cls, label
        self.detail, self.stage = detail, stage


def release(d, emu, name, want, t0=0.0, unix=False):
    """One /key/release; classified as ok, wrong_key, upstream (a stage-named upstream error),
    other_stage (stage-named, e.g. a deadline that passed before stage device), busy (503
    over --max-releases) or unclear (no answer, no JSON error, no known stage)."""
    body = json.dumps({"maa_endpoint": host_of(emu.ep["maa"]),
                       "akv_endpoint": host_of(emu.ep["akv"]), "kid": name})
    start = time.monotonic()
    try:
        st, _, raw = d.request("POST", "/key/release", body, unix=unix)
    except (OSError, http.client.HTTPException) as e:
        return Result(start - t0, time.monotonic() - start, "unclear", "no answer",
                      repr(e)[:200])
    el = time.monotonic() - start
    try:
        doc = json.loads(raw)
    except ValueError:
        doc = None
    if st == 200:
        try:
            got = json.loads(doc["key"])
        except (TypeError, KeyError, ValueError) as e:
            return Result(start - t0, el, "wrong_key", "200 without a key", repr(e)[:200])
        diff = key_diff(got, want)
        return Result(start - t0, el, "wrong_key" if diff else "ok",
                      f"{name}: {diff}" if diff else "200", diff)
    if not isinstance(doc, dict) or not isinstance(doc.get("error"), str) or not doc["error"]:
        return Result(start - t0, el, "unclear", f"{st} without a JSON error", raw[:200])
    stage = doc.get("stage")
    up = doc.get("upstream_status")
    label = f"{st} stage={stage}" + (f" upstream={up}" if up is not None else "")
    if st == 503 and stage == "input":
        return Result(start - t0, el, "busy", label, doc["error"][:200], stage)
    if stage in UPSTREAM_STAGES:
        return Result(start - t0, el, "upstream", label, doc["error"][:200], stage)
    if stage in STAGES:
        return Result(start - t0, el, "other_stage", label, doc["error"][:200], stage)
    return Result(start - t0, el, "unclear", label, doc["error"][:200], stage)


def run_clients(d, emu, keys, n, stop, results, t0):
    lock = threading.Lock()
    names = sorted(keys)

    def loop(idx):
        i = idx
        while not stop.is_set():
            name = names[i % len(names)]
            i += 1
            r = release(d, emu, name, keys[name], t0)
            with lock:
                results.append(r)
    threads = [threading.Thread(target=loop, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    return threads


# ---- /proc ---------------------------------------------------------------------------------

def proc_sockets():
    """inode -> (kind, local port, remote port, state) for TCP; inode -> ('unix', path)."""
    out = {}
    for f in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(f).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            c = line.split()
            out[c[9]] = ("tcp", int(c[1].rsplit(":", 1)[1], 16), int(c[2].rsplit(":", 1)[1], 16),
                         c[3])
    try:
        for line in open("/proc/net/unix").read().splitlines()[1:]:
            c = line.split()
            out[c[6]] = ("unix", c[7] if len(c) > 7 else "")
    except OSError:
        pass
    return out


def fd_snapshot(pid, skrd_port, emu):
    """skrd's descriptors by kind; None when /proc/PID/fd cannot be read (skrd is
    non-dumpable: only root can)."""
    base = f"/proc/{pid}/fd"
    try:
        names = os.listdir(base)
    except OSError:
        return None
    socks = proc_sockets()
    up_ports = {p: s for s, p in emu.ports.items()}
    kinds = {}
    for n in names:
        try:
            t = os.readlink(os.path.join(base, n))
        except OSError:
            continue
        if t.startswith("socket:["):
            s = socks.get(t[8:-1])
            if s is None:
                k = "socket (other)"
            elif s[0] == "unix":
                k = "unix socket"
            elif s[3] == "0A":
                k = "tcp listen"
            elif s[2] in up_ports:
                k = "upstream " + up_ports[s[2]]
            elif s[1] == skrd_port:
                k = "client connection"
            else:
                k = "tcp (other)"
        elif t.startswith("anon_inode:"):
            k = t
        elif t.startswith("pipe:"):
            k = "pipe"
        elif t.startswith("/dev/"):
            k = t
        else:
            k = "file"
        kinds[k] = kinds.get(k, 0) + 1
    return {"total": len(names), "kinds": kinds}


def status_snapshot(pid):
    out = {}
    try:
        for line in open(f"/proc/{pid}/status"):
            k, _, v = line.partition(":")
            if k in ("VmRSS", "RssAnon", "VmHWM", "Threads"):
                out[k] = int(v.split()[0])
    except OSError:
        pass
    return out


def upstream_fds(snap):
    return sum(v for k, v in snap["kinds"].items() if k.startswith("upstream "))


# ---- reporting -----------------------------------------------------------------------------

def pct(vals, p):
    if not vals:
        return None
    s = sorted(vals)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def ms(v):
    return None if v is None else round(v * 1000, 1)


def summarize(results):
    by = {}
    for r in results:
        by.setdefault(r.cls, []).append(r)
    fail_classes = {}
    for r in by.get("upstream", []) + by.get("other_stage", []) + by.get("busy", []) + \
            by.get("unclear", []):
        fail_classes[r.label] = fail_classes.get(r.label, 0) + 1
    lat = [r.elapsed for r in results]
    okl = [r.elapsed for r in by.get("ok", [])]
    return {
        "attempted": len(results), "succeeded": len(by.get("ok", [])),
        "failed_upstream": len(by.get("upstream", [])),
        "failed_other_stage": len(by.get("other_stage", [])),
        "busy_503": len(by.get("busy", [])),
        "unclear": len(by.get("unclear", [])), "wrong_keys": len(by.get("wrong_key", [])),
        "failures_by_class": dict(sorted(fail_classes.items(), key=lambda kv: -kv[1])),
        "latency_ms": {"p50": ms(pct(lat, 50)), "p99": ms(pct(lat, 99)),
                       "max": ms(max(lat) if lat else None)},
        "success_latency_ms": {"p50": ms(pct(okl, 50)), "p99": ms(pct(okl, 99))},
        "examples": {c: [f"{r.label}: {r.detail}"[:240] for r in by.get(c, [])[:3]]
                     for c in ("unclear", "wrong_key")},
    }


def loadavg():
    try:
        return open("/proc/loadavg").read().split()[:3]
    except OSError:
        return []


# ---- the soak ------------------------------------------------------------------------------

def main():
    summary = {"seconds": ARGS.seconds, "clients": ARGS.clients, "seed": ARGS.seed,
               "faults": FAULTS, "retries": ARGS.retries, "load_average_start": loadavg(),
               "tolerances": {"rss_anon_kib": RSS_TOLERANCE_KIB,
                              "scenario_a_slack_s": SCENARIO_A_SLACK_S}}
    t_begin = time.time()
    say(f"# soak: {ARGS.seconds} s, {ARGS.clients} clients, faults {' '.join(FAULTS)}, "
        f"seed {ARGS.seed}, skrd --retries {ARGS.retries}; work {WORK}")
    phase("skr-emu init")
    p = subprocess.run([EMU_BIN, "init", EMU_DIR], capture_output=True)
    if not check(p.returncode == 0, "skr-emu init", p.stderr.decode(errors="replace")):
        return summary
    emu = Emu()
    if not check(emu.start(FAULTS, ARGS.seed), "skr-emu serve with faults"):
        return summary
    phase("importing the keys")
    keys, secrets = make_keys(emu)
    check(True, "oct-HSM and RSA-HSM keys imported with a release policy on HOST_DATA "
          "(through the faults)")
    # the comparator must be able to fail: the RSA key is not the oct key
    check(key_diff({"kty": "oct", "k": b64u(os.urandom(32))}, keys["soak-oct"]) != "" and
          key_diff({"kty": "oct", "k": b64u(keys["soak-oct"]["k"])}, keys["soak-oct"]) == "",
          "the wrong-key detector tells the imported key from another one")

    # ---- the main run
    d = Skrd("skrd", emu, ["--retries", str(ARGS.retries), "--max-releases",
                           str(max(8, ARGS.clients)), "--release-deadline-ms",
                           str(MAIN_DEADLINE_MS)])
    if not check(d.start(), "skrd ready on /status", d.output()):
        return summary
    pid = d.proc.pid
    phase(f"skrd pid {pid} ready on port {d.port}: warm-up")
    warm = min(10.0, max(3.0, ARGS.seconds / 10))
    stop = threading.Event()
    warm_results = []
    threads = run_clients(d, emu, keys, ARGS.clients, stop, warm_results, time.monotonic())
    time.sleep(warm)
    stop.set()
    for t in threads:
        t.join()
    time.sleep(TRIM_WAIT_S)
    fd0, st0 = fd_snapshot(pid, d.port, emu), status_snapshot(pid)
    say(f"# warm-up: {len(warm_results)} releases in {warm:.0f} s; idle: fds {fd0}, {st0}")

    phase(f"main run: {ARGS.clients} clients for {ARGS.seconds} s")
    results = []
    stop = threading.Event()
    t0 = time.monotonic()
    threads = run_clients(d, emu, keys, ARGS.clients, stop, results, t0)
    mid = t0 + ARGS.seconds / 2
    restart = {}
    while time.monotonic() < mid:
        time.sleep(0.2)
    restart["killed_at_s"] = round(time.monotonic() - t0, 1)
    phase("killing the emulator (SIGKILL), starting it again on the same ports")
    emu.kill(signal.SIGKILL)
    time.sleep(1.0)
    restarted = emu.start(FAULTS, ARGS.seed)
    restart["serving_again_at_s"] = round(time.monotonic() - t0, 1)
    check(restarted, "the emulator killed (SIGKILL) mid-run and started again on the same ports")
    while time.monotonic() < t0 + ARGS.seconds:
        time.sleep(0.2)
    stop.set()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    phase(f"main run over ({len(results)} releases): idle for {TRIM_WAIT_S} s")
    alive = d.proc.poll() is None
    time.sleep(TRIM_WAIT_S)
    fd1, st1 = fd_snapshot(pid, d.port, emu), status_snapshot(pid)
    main_sum = summarize(results)
    main_sum["wall_s"] = round(wall, 1)
    main_sum["releases_per_s"] = round(len(results) / wall, 2) if wall > 0 else None
    after = [r for r in results if r.t >= restart["serving_again_at_s"] + 5]
    main_sum["succeeded_after_emulator_restart"] = sum(r.cls == "ok" for r in after)
    main_sum["emulator_restart"] = restart
    over = [r for r in results if r.elapsed > MAIN_DEADLINE_MS / 1000 + SCENARIO_A_SLACK_S]
    main_sum["over_deadline"] = len(over)
    if over:
        finding(f"main run: {len(over)} of {len(results)} releases took longer than skrd's "
                f"{MAIN_DEADLINE_MS} ms deadline + {SCENARIO_A_SLACK_S} s (slowest "
                f"{ms(max(r.elapsed for r in over))} ms; " +
                ", ".join(sorted({r.label for r in over})) + ")")
    summary["main"] = main_sum
    rc = d.stop()
    summary["skrd_exit_status"] = rc
    crashes = (0 if alive else 1) + (0 if rc == 0 else 1)
    summary["crashes"] = crashes
    check(main_sum["attempted"] > 0 and main_sum["succeeded"] > 0,
          f"releases succeed through the faults ({main_sum['succeeded']} of "
          f"{main_sum['attempted']})")
    check(main_sum["succeeded_after_emulator_restart"] > 0,
          "releases succeed again after the emulator restart "
          f"({main_sum['succeeded_after_emulator_restart']} from 5 s after it)")
    check(main_sum["wrong_keys"] == 0, f"wrong keys: {main_sum['wrong_keys']} (every 200 "
          "carries exactly the imported k, or n and d)",
          "\n".join(main_sum["examples"]["wrong_key"]))
    check(main_sum["unclear"] == 0, f"failures without a stage-named JSON error: "
          f"{main_sum['unclear']}", "\n".join(main_sum["examples"]["unclear"]))
    check(alive, "skrd alive at the end of the soak", d.output())
    check(rc == 0, f"skrd exits 0 on SIGTERM after the soak (exit status {rc})", d.output())

    # ---- descriptors and memory
    res = {"start": {"fds": fd0, "status": st0}, "end": {"fds": fd1, "status": st1}}
    if fd0 is None or fd1 is None:
        res["fd_leak"] = None
        finding("skrd's /proc/PID/fd is not readable (skrd is non-dumpable: run as root): "
                "descriptors not measured")
    else:
        other0 = fd0["total"] - upstream_fds(fd0)
        other1 = fd1["total"] - upstream_fds(fd1)
        # libcurl's shared connection cache keeps a few idle upstream connections, how many
        # depends on the last requests; a leak is any other descriptor more, or more upstream
        # connections than the clients could have had in flight.
        leak = max(0, other1 - other0) + max(0, upstream_fds(fd1) - max(upstream_fds(fd0),
                                                                        4 * ARGS.clients))
        res["fd_leak"] = leak
        check(leak == 0, f"descriptors, idle: {fd0['total']} after warm-up, {fd1['total']} at "
              f"the end (upstream connections {upstream_fds(fd0)} -> {upstream_fds(fd1)}): "
              f"leak {leak}", json.dumps({"start": fd0, "end": fd1}))
    if st0.get("RssAnon") is not None and st1.get("RssAnon") is not None:
        growth = st1["RssAnon"] - st0["RssAnon"]
        res["rss_anon_growth_kib"] = growth
        res["vm_rss_growth_kib"] = st1.get("VmRSS", 0) - st0.get("VmRSS", 0)
        if growth > RSS_TOLERANCE_KIB:
            finding(f"skrd RssAnon grew {growth} KiB over the soak (tolerance "
                    f"{RSS_TOLERANCE_KIB} KiB): {st0} -> {st1}")
    if st0.get("Threads") is not None and st1.get("Threads") != st0.get("Threads"):
        finding(f"skrd threads, idle: {st0.get('Threads')} after warm-up, {st1.get('Threads')} "
                "at the end")
    summary["resources"] = res

    # ---- secrets in the log
    text = b""
    try:
        text = open(d.log, "rb").read()
    except OSError:
        pass
    leaked = sum(1 for s in secrets if s.encode() in text)
    lines = text.count(b"\n")
    summary["secrets_in_log"] = leaked
    check(leaked == 0 and lines > 0, f"no imported key member or bearer token in skrd's info "
          f"log ({lines} lines, {len(secrets)} secrets searched)")

    # ---- scenario (a): the emulator stopped entirely
    phase("scenario (a): the emulator stopped")
    emu.kill(signal.SIGTERM)
    summary["scenario_a"] = scenario_a(emu, keys)

    # ---- scenario (b): skrd SIGKILLed and started again
    phase("scenario (b): skrd SIGKILLed and started again")
    summary["scenario_b"] = scenario_b(emu, keys)
    phase("done")
    erc = emu.kill(signal.SIGTERM)
    summary["emulator_exit_status"] = erc
    summary["elapsed_s"] = round(time.time() - t_begin, 1)
    summary["load_average_end"] = loadavg()
    return summary


def scenario_a(emu, keys):
    deadline_ms = SCENARIO_A_DEADLINE_MS
    d = Skrd("skrd-a", emu, ["--release-deadline-ms", str(deadline_ms), "--retries", "8"])
    out = {"deadline_ms": deadline_ms}
    if not check(d.start(), "scenario (a): skrd ready with the emulator stopped", d.output()):
        return out
    lock = threading.Lock()
    names = sorted(keys)
    n = max(2, ARGS.clients)

    def one(i, acc):
        r = release(d, emu, names[i % len(names)], keys[names[i % len(names)]])
        with lock:
            acc.append(r)
    # one at a time, with pauses for the transfer-key pool to refill: what the deadline bounds
    seq = []
    for i in range(4):
        one(i, seq)
        time.sleep(2)
    # then the clients at once: the pool is empty, each release makes its RSA key inline
    conc = []
    for _round in range(2):
        threads = [threading.Thread(target=one, args=(i, conc)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    results = seq + conc
    alive = d.proc.poll() is None
    rc = d.stop()
    s = summarize(results)
    limit = deadline_ms / 1000 + SCENARIO_A_SLACK_S
    stages = {}
    for r in results:
        stages[r.stage or "none"] = stages.get(r.stage or "none", 0) + 1
    named = s["failed_upstream"] + s["failed_other_stage"]
    out.update({"attempted": len(results), "stage_named": named,
                "stage_named_upstream": s["failed_upstream"],
                "by_class": s["failures_by_class"], "by_stage": stages,
                "max_elapsed_ms": s["latency_ms"]["max"], "exit_status": rc})
    check(named == len(results) and results,
          f"scenario (a): every release ({len(results)}) fails with a stage-named error "
          f"({', '.join(f'{k}: {v}' for k, v in s['failures_by_class'].items())})",
          "\n".join(f"{r.label}: {r.detail}" for r in results
                    if r.cls not in ("upstream", "other_stage"))[:2000])
    for label, part in (("one at a time", seq), (f"{n} at once", conc)):
        key = "sequential" if part is seq else "concurrent"
        over = [r for r in part if r.elapsed > limit]
        mx = ms(max((r.elapsed for r in part), default=None))
        out[key] = {"attempted": len(part), "max_elapsed_ms": mx, "over_deadline": len(over),
                    "by_class": summarize(part)["failures_by_class"]}
        say(f"# scenario (a), {label}: slowest failure {mx} ms with --release-deadline-ms "
            f"{deadline_ms} (--retries 8); {len(over)} over the deadline + "
            f"{SCENARIO_A_SLACK_S} s")
        if over:
            finding(f"scenario (a), {label}: {len(over)} of {len(part)} releases took longer "
                    f"than the {deadline_ms} ms deadline + {SCENARIO_A_SLACK_S} s (slowest "
                    f"{mx} ms; " + ", ".join(sorted({r.label for r in over})) + ")")
    for r in results:
        if r.cls == "other_stage":
            say(f"#   (a) {r.label} after {r.elapsed * 1000:.0f} ms: {r.detail}")
    check(alive and rc == 0, f"scenario (a): skrd alive, exits 0 on SIGTERM (exit status {rc})",
          d.output())
    out["crashes"] = (0 if alive else 1) + (0 if rc == 0 else 1)
    return out


def scenario_b(emu, keys):
    out = {}
    if not check(emu.start([], ARGS.seed), "scenario (b): the emulator started again, no "
                 "faults, same ports"):
        return out
    sock = os.path.join(WORK, "skrd.sock")
    d = Skrd("skrd-b", emu, sock=sock)
    if not check(d.start(), "scenario (b): skrd ready (TCP and Unix socket)", d.output()):
        return out
    stop = threading.Event()
    results = []
    threads = run_clients(d, emu, keys, ARGS.clients, stop, results, time.monotonic())
    time.sleep(1.5)
    stop.set()  # each client ends after the release it has in flight
    d.proc.kill()
    d.proc.wait()
    for t in threads:
        t.join()
    out["in_flight_at_the_kill"] = len([r for r in results if r.cls == "unclear"])
    out["socket_left_behind"] = os.path.exists(sock)
    t = time.monotonic()
    ready = d.start()
    out["restart_ready_ms"] = round((time.monotonic() - t) * 1000)
    check(ready, "scenario (b): skrd SIGKILLed with releases in flight, started again with the "
          "same port and socket" + (" (left behind by the dead process)" if
                                    out["socket_left_behind"] else "") +
          ": ready without manual steps", d.output())
    out["served_again"] = False
    if ready:
        r1 = release(d, emu, "soak-oct", keys["soak-oct"])
        r2 = release(d, emu, "soak-rsa", keys["soak-rsa"], unix=True)
        out["served_again"] = r1.cls == "ok" and r2.cls == "ok"
        check(out["served_again"], "scenario (b): after the restart a release over TCP "
              "(oct) and one over the Unix socket (RSA) return the imported keys",
              f"tcp: {r1.label} {r1.detail}\nunix: {r2.label} {r2.detail}")
    rc = d.stop()
    out["exit_status"] = rc
    check(rc == 0 and not os.path.exists(sock), f"scenario (b): the restarted skrd exits 0 on "
          f"SIGTERM (exit status {rc}) and removes its socket", d.output())
    out["crashes"] = 0 if rc == 0 else 1
    return out


def print_table(s):
    m = s.get("main", {})
    rs = s.get("resources", {})
    f0 = (rs.get("start") or {}).get("fds") or {}
    f1 = (rs.get("end") or {}).get("fds") or {}
    m0 = (rs.get("start") or {}).get("status") or {}
    m1 = (rs.get("end") or {}).get("status") or {}
    a = s.get("scenario_a", {})
    b = s.get("scenario_b", {})
    rows = [
        ("releases attempted", m.get("attempted")),
        ("succeeded", m.get("succeeded")),
        ("failed, stage-named upstream error", m.get("failed_upstream")),
        ("failed, stage-named, other stage", m.get("failed_other_stage")),
        ("busy (503, --max-releases)", m.get("busy_503")),
        ("failed without a clear error (must be 0)", m.get("unclear")),
        ("wrong keys (must be 0)", m.get("wrong_keys")),
        ("crashes / unclean exits (must be 0)", s.get("crashes")),
        ("fds idle: after warm-up -> end", f"{f0.get('total')} -> {f1.get('total')}"),
        ("fd leak (must be 0)", rs.get("fd_leak")),
        ("VmRSS KiB idle: after warm-up -> end", f"{m0.get('VmRSS')} -> {m1.get('VmRSS')}"),
        ("RssAnon KiB idle: after warm-up -> end", f"{m0.get('RssAnon')} -> {m1.get('RssAnon')}"
         f" ({rs.get('rss_anon_growth_kib')}, tolerance {RSS_TOLERANCE_KIB})"),
        ("threads idle: after warm-up -> end", f"{m0.get('Threads')} -> {m1.get('Threads')}"),
        ("latency p50 / p99 / max ms (all answers)",
         "{p50} / {p99} / {max}".format(**m.get("latency_ms", {"p50": None, "p99": None,
                                                               "max": None}))),
        ("latency p50 / p99 ms (successes)",
         "{p50} / {p99}".format(**m.get("success_latency_ms", {"p50": None, "p99": None}))),
        ("releases/s", m.get("releases_per_s")),
        (f"over the {MAIN_DEADLINE_MS} ms deadline + {SCENARIO_A_SLACK_S} s",
         m.get("over_deadline")),
        ("secrets in skrd's log (must be 0)", s.get("secrets_in_log")),
        ("(a) emulator stopped: stage-named / attempted",
         f"{a.get('stage_named')} / {a.get('attempted')} (upstream stage: "
         f"{a.get('stage_named_upstream')})"),
        ("(a) slowest failure ms, one at a time (deadline)",
         f"{(a.get('sequential') or {}).get('max_elapsed_ms')} ({a.get('deadline_ms')})"),
        ("(a) slowest failure ms, all clients at once (deadline)",
         f"{(a.get('concurrent') or {}).get('max_elapsed_ms')} ({a.get('deadline_ms')})"),
        ("(b) skrd SIGKILLed: served again", b.get("served_again")),
        ("(b) restart to ready ms", b.get("restart_ready_ms")),
    ]
    say("")
    w = max(len(r[0]) for r in rows)
    for k, v in rows:
        say(f"  {k.ljust(w)}  {v}")
    if m.get("failures_by_class"):
        say("  failures by class:")
        for k, v in m["failures_by_class"].items():
            say(f"    {v:6d}  {k}")
    say("")


def cleanup():
    for p in CHILDREN:
        if p.poll() is None:
            p.kill()
            p.wait()


if __name__ == "__main__":
    # a timeout's SIGTERM (meson test, make) still stops skrd and the emulator (finally below)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        SUMMARY = main()
    except Exception as e:  # noqa: BLE001 - the driver's own failure is one failed check
        import traceback
        check(False, f"soak driver stopped: {e!r}", traceback.format_exc())
        SUMMARY = {}
    finally:
        cleanup()
    SUMMARY["checks"] = [{"ok": c[0], "check": c[1]} for c in CHECKS]
    SUMMARY["findings"] = FINDINGS
    failed = [c for c in CHECKS if not c[0]]
    SUMMARY["failed_checks"] = len(failed)
    print_table(SUMMARY)
    try:
        with open(ARGS.json, "w") as f:
            json.dump(SUMMARY, f, indent=2)
        say(f"# summary: {ARGS.json}")
    except OSError as e:
        say(f"# cannot write {ARGS.json}: {e}")
    for c in failed:
        say(f"# FAILED: {c[1]}")
        for line in c[2].splitlines()[:10]:
            say(f"#   {line}")
    say(f"# {len(CHECKS) - len(failed)} of {len(CHECKS)} checks passed, "
        f"{len(FINDINGS)} findings")
    if failed or ARGS.keep or ARGS.work:
        say(f"# work directory kept: {WORK}")
    else:
        shutil.rmtree(WORK, ignore_errors=True)
    sys.exit(1 if failed else 0)
