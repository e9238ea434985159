#!/usr/bin/env python3
"""hygiene.py - secret hygiene of libskr, skrd and skr against `skr-emu serve` (issue #6), driven
by test_hygiene.sh. Reuses skrd_e2e.py's emulator client, key maker and skrd runner (imported).

usage: hygiene.py all SKRD EMU_DIR WORK MEMSCAN SKR SKR_EMU EMU_PID

 1. libskr in memory: MEMSCAN self releases RSA, EC and oct keys made here (with the caller's
    token, then with the IMDS identity), frees everything and scans its own writable memory for
    every private member (raw and base64url), the caller's token and any JWT-shaped string: 0.
    The negative control (--leak keeps a copy of each JWK) must be found.
 2. skrd in memory (root only): after releases (granted, denied, with a caller token, workload
    identity with a federated assertion), idle, MEMSCAN pid scans skrd's writable memory through
    /proc/PID/mem, live secret pages (MADV_DONTDUMP) excepted: no key member, no caller token, no
    assertion.
 3. Logs and error bodies: skrd at -loglevel trace through success, denial, bad and expired
    tokens, workload identity, and upstream faults (the emulator restarted with --fault): no
    known secret, no JWT-shaped string, no private JWK member, no PEM private key in any log
    line or any HTTP error body.
 4. mlock: skrd without CAP_IPC_LOCK and RLIMIT_MEMLOCK 0 logs the mlock warning.
 5. Non-dumpable: skrd run as nobody: its /proc/PID files are root's and a same-uid process
    cannot read its memory or environment, while a plain process of nobody can be read.
 6. skr: `skr release` (text, --out -), `skr token` (managed and workload identity), `skr attest`
    and their failures: stderr never holds a key member or a token; stdout only where asked.
Prints "ok - ..." / "not ok - ..." lines and "#" details; exits 1 when any check failed.
"""
import base64
import json
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import skrd_e2e as E  # noqa: E402 - reads sys.argv[1:5] like this script

MEMSCAN, SKR, SKR_EMU, EMU_PID = sys.argv[5], sys.argv[6], sys.argv[7], int(sys.argv[8])
WORK = E.WORK
ok, not_ok, check, note = E.ok, E.not_ok, E.check, E.note
IS_ROOT = os.geteuid() == 0
VALGRIND = os.environ.get("SKR_VALGRIND") == "1"
NOBODY = 65534

# every text secret the test knows (label -> str); the logs, error bodies and stderr are searched
TEXT = {}
# every HTTP error body skrd answered, and every stderr of skr
BODIES = []


# ---- needles: what memscan looks for, masked --------------------------------------------------

def write_needles(dirname, needles):
    """needles: {label: bytes}; each file holds mask || needle XOR mask."""
    os.makedirs(dirname, exist_ok=True)
    for f in os.listdir(dirname):
        os.unlink(os.path.join(dirname, f))
    for label, v in needles.items():
        mask = os.urandom(len(v))
        with open(os.path.join(dirname, label + ".needle"), "wb") as f:
            f.write(mask + bytes(a ^ b for a, b in zip(v, mask)))


def key_needles(keys):
    """The private members of each key made here: raw bytes and base64url text."""
    out = {}
    for name, (_, want) in keys.items():
        for m in ("d", "p", "q", "dp", "dq", "qi", "k"):
            if m in want:
                out[f"{name}-{m}-b64u"] = want[m].encode()
                out[f"{name}-{m}-raw"] = E.b64u_dec(want[m])
                TEXT[f"{name} member {m}"] = want[m]
    return out


def memscan(args, desc):
    p = subprocess.run([MEMSCAN] + args, capture_output=True, text=True, timeout=300)
    out = p.stdout + p.stderr
    for line in out.splitlines()[-12:]:
        note(f"{desc}: {line}")
    return p.returncode, out


# ---- 1. libskr ----------------------------------------------------------------------------------

def lib_args(needles, kids):
    a = ["self", "--needles", needles, "--maa", E.host_of(E.EP["maa"]),
         "--akv", E.host_of(E.EP["akv"]),
         "--set", "snp_device=emulated:" + E.DIR, "--set", "security_context_dir=" + E.SC,
         "--set", "imds_endpoint=" + E.EP["imds"],
         "--set", "ca_file=" + os.path.join(E.DIR, "ca.pem")]
    for k in kids:
        a += ["--kid", k]
    return a


def lib_memory(keys, bearer):
    kids = list(keys)
    needles = os.path.join(WORK, "needles-lib")
    tokfile = os.path.join(WORK, "caller-token")
    with open(tokfile, "w") as f:
        f.write(bearer + "\n")
    n = key_needles(keys)
    n["caller-token"] = bearer.encode()
    write_needles(needles, n)
    rc, out = memscan(lib_args(needles, kids) + ["--token-file", tokfile], "libskr, caller token")
    check(rc == 0 and "positive: all" in out and " 0 needle hits, 0 JWT-shaped" in out,
          f"libskr app after skr_client_free: none of {len(n)} secrets (private members raw and "
          "base64url, the caller's token) and no JWT-shaped string in its writable memory; each "
          "was found in what it released first", out[-1500:])
    # the IMDS identity: libskr gets its own vault token (and an MAA token): no JWT may remain
    del n["caller-token"]
    write_needles(needles, n)
    rc, out = memscan(lib_args(needles, kids), "libskr, IMDS identity")
    check(rc == 0 and "positive: all" in out and " 0 needle hits, 0 JWT-shaped" in out,
          "libskr app with the IMDS identity after skr_client_free: no key member, no vault or "
          "MAA token (no JWT-shaped string) in its writable memory", out[-1500:])
    # negative control: a strdup of each released JWK, never wiped, must be found
    rc, out = memscan(lib_args(needles, kids) + ["--leak"], "negative control")
    hits = re.findall(r"^hit (\S+)", out, re.M)
    want = sorted(k for k in n if k.endswith("-b64u"))
    missing = [k for k in want if k not in hits]
    check(rc == 1 and not missing,
          f"negative control: the scan finds the copies a leaking app keeps ({len(hits)} hits, "
          f"every base64url member among them)", f"exit {rc}; missing {missing}\n{out[-1500:]}")


# ---- 2. + 3. skrd ---------------------------------------------------------------------------------

JWT_RE = re.compile(rb"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}")
PRIV_RE = re.compile(rb'"(d|p|q|dp|dq|qi|k)"\s*:\s*"[A-Za-z0-9_-]{16,}')
PEM_RE = re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----")


def err_release(d, desc, kid, **kw):
    st, doc, raw = d.release(kid, **kw)
    BODIES.append((f"skrd {desc}", raw))
    check(st not in (0, 200) and isinstance(doc, dict) and doc.get("error"),
          f"{desc}: an error answer ({st}, stage {doc.get('stage') if isinstance(doc, dict) else None})",
          raw[:300])
    return st, doc


def skrd_scan(d, needles, desc):
    """memscan pid over an idle skrd; returns True when clean."""
    if not IS_ROOT or VALGRIND:
        ok(f"# SKIP {desc}: skrd memory scan needs root (CAP_SYS_PTRACE reads a non-dumpable "
           "process) and no valgrind")
        return
    time.sleep(1.0)  # idle: the handler threads have answered and returned
    rc, out = memscan(["pid", str(d.proc.pid), "--needles", needles, "--skip-dontdump",
                       "--no-jwt"], desc)
    jwts = len(re.findall(r"^jwt-shaped", out, re.M))
    check(rc == 0 and " 0 needle hits" in out, f"{desc}: no released key member (raw or "
          f"base64url) and no caller token or assertion in skrd's writable memory "
          f"({jwts} JWT-shaped strings outside secret pages, listed below)", out[-2000:])
    return out


def skrd_runs(keys, bearer):
    names = list(keys)
    needles = os.path.join(WORK, "needles-skrd")
    n = key_needles(keys)
    caller = E.imds_token()
    TEXT["caller access_token"] = caller
    n["caller-token"] = caller.encode()
    expired = E.forged_entra_token(-7200)
    TEXT["expired caller token"] = expired
    n["expired-token"] = expired.encode()
    fed = os.path.join(WORK, "federated-token")
    assertion = E.federated_assertion()
    with open(fed, "w") as f:
        f.write(assertion)
    TEXT["federated assertion"] = assertion
    n["assertion"] = assertion.encode()
    write_needles(needles, n)

    E.import_key(bearer, "hyg-deny", keys[names[0]][0], E.release_policy("00" * 32))
    if IS_ROOT and not VALGRIND:
        # the positive control of the pid scan: another process that holds the key members as
        # text (a Python str) is found holding them
        holder = subprocess.Popen(
            ["python3", "-c", "import sys\ns = sys.stdin.readline()\nprint('ready', flush=True)"
             "\nsys.stdin.read()"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        E.CHILDREN.append(holder)
        holder.stdin.write(json.dumps([w for _, w in keys.values()]) + "\n")
        holder.stdin.flush()
        holder.stdout.readline()
        rc, out = memscan(["pid", str(holder.pid), "--needles", needles, "--no-jwt"],
                          "control process")
        holder.stdin.close()
        holder.wait(timeout=30)
        hits = sorted(set(re.findall(r"^hit (hyg-\S+-b64u)", out, re.M)))
        want = sorted(k for k in n if k.startswith("hyg-") and k.endswith("-b64u"))
        check(rc == 1 and hits == want, f"control: the pid scan of a process that holds the "
              f"released keys' JSON finds every base64url member ({len(hits)} of {len(want)})",
              out[-1500:])
    d = E.start("hyg-skrd", "managed identity")
    if d.ready:
        for name in names:
            E.check_release(d, name, keys[name][1], f"skrd release {name} (IMDS identity)")
        E.check_release(d, names[-1], keys[names[-1]][1], f"skrd release {names[-1]} with the "
                        "caller's access_token", access_token=caller)
        err_release(d, "policy denial", "hyg-deny")
        err_release(d, "unknown key", "hyg-no-such-key")
        err_release(d, "expired caller token", names[0], access_token=expired)
        err_release(d, "tampered caller token", names[0], access_token=caller[:-8] + "AAAAAAAA")
        err_release(d, "MAA down", names[0], maa=f"127.0.0.1:{E.closed_port()}")
        st, doc, raw = d.json("POST", "/attest/maa", {"maa_endpoint": E.host_of(E.EP["maa"]),
                                                      "runtime_data": E.b64(b'{"a":1}')})
        if st == 200 and isinstance(doc, dict) and isinstance(doc.get("token"), str):
            TEXT["MAA token of /attest/maa"] = doc["token"]
            ok("skrd /attest/maa: an MAA token (searched for in the logs)")
        else:
            not_ok("skrd /attest/maa", raw[:300])
        skrd_scan(d, needles, "skrd (IMDS identity) idle after releases")
    E.stop(d, "managed identity")

    wi_env = {"AZURE_CLIENT_ID": E.EMU_CFG["managed_identity"]["client_id"],
              "AZURE_TENANT_ID": E.EMU_CFG["tenant_id"], "AZURE_FEDERATED_TOKEN_FILE": fed,
              "AZURE_AUTHORITY_HOST": E.EP["imds"]}
    d = E.start("hyg-skrd-wi", "workload identity", env_extra=wi_env,
                imds=f"http://127.0.0.1:{E.closed_port()}")
    if d.ready:
        for name in names[:2]:
            E.check_release(d, name, keys[name][1], f"skrd release {name} (workload identity)")
        err_release(d, "workload identity, policy denial", "hyg-deny")
        skrd_scan(d, needles, "skrd (workload identity) idle after releases")
    E.stop(d, "workload identity")
    extra = E.EMU_CFG.get("workload_client_ids", [])
    if extra:
        d = E.start("hyg-skrd-wi-denied", "workload identity without release permission",
                    env_extra=dict(wi_env, AZURE_CLIENT_ID=extra[0]),
                    imds=f"http://127.0.0.1:{E.closed_port()}")
        if d.ready:
            err_release(d, "workload identity without release permission", names[0])
        E.stop(d, "workload identity without release permission")


def restart_emulator_with_faults():
    """Stops the test's emulator and starts one with faults on every service (seeded)."""
    os.kill(EMU_PID, signal.SIGTERM)
    for _ in range(100):
        if not os.path.exists(os.path.join(E.DIR, "endpoints.json")):
            break
        time.sleep(0.1)
    out = open(os.path.join(WORK, "serve-faults.err"), "wb")
    p = subprocess.Popen([SKR_EMU, "serve", E.DIR, "--imds-port", "0", "--maa-port", "0",
                          "--akv-port", "0", "--seed", "606",
                          "--fault", "all:status:0.1:500", "--fault", "all:status:0.05:503",
                          "--fault", "all:status:0.05:429", "--fault", "all:drop:0.03"],
                         stdout=out, stderr=subprocess.STDOUT)
    E.CHILDREN.append(p)
    for _ in range(200):
        if os.path.exists(os.path.join(E.DIR, "endpoints.json")):
            break
        time.sleep(0.1)
    time.sleep(0.2)
    E.EP = json.load(open(os.path.join(E.DIR, "endpoints.json")))
    return p


def faults_run(keys):
    p = restart_emulator_with_faults()
    check(p.poll() is None, "skr-emu serve restarted with 10% 500, 5% 503, 5% 429, 3% drops")
    # the new MAA listens on another port: the keys' policies must name it (imported again,
    # through the faults, retried here)
    for attempt in range(40):
        try:
            bearer = E.imds_token()
            for name, (imp, _) in keys.items():
                E.import_key(bearer, name, imp, E.release_policy())
            break
        except Exception:  # noqa: BLE001
            if attempt == 39:
                raise
            time.sleep(0.2)
    d = E.start("hyg-skrd-faults", "upstream faults", extra=["--retries", "0"])
    good = bad = wrong = 0
    if d.ready:
        names = list(keys)
        for i in range(16):
            name = names[i % len(names)]
            st, doc, raw = d.release(name)
            if st == 200:
                good += 1
                try:
                    wrong += bool(E.compare_jwk(E.released_jwk(st, doc, raw), keys[name][1]))
                except Exception:  # noqa: BLE001 - a malformed success is a wrong key too
                    wrong += 1
            else:
                bad += 1
                BODIES.append((f"skrd release {name} through faults", raw))
                if bad <= 3:
                    note(f"through faults: {st} {raw[:240]!r}")
        check(bad > 0 and wrong == 0, f"16 releases through upstream faults with --retries 0: "
              f"{bad} failed (their error bodies are searched), {good} succeeded, {wrong} with a "
              "wrong key")
    E.stop(d, "upstream faults")
    return p


def logs_and_bodies():
    text = E.logs_text()
    lines = text.count(b"\n")
    check(lines >= 50, f"trace logs written ({lines} lines over {len(E.LOGS)} skrd runs)",
          "a hygiene check over an empty log proves nothing")
    for what, blob in (("skrd trace logs", text),
                       (f"{len(BODIES)} HTTP error bodies and skr stderr outputs",
                        b"\n".join(b for _, b in BODIES))):
        leaks = [label for label, v in TEXT.items() if v and v.encode() in blob]
        check(not leaks, f"{what}: none of {len(TEXT)} known secrets (key members, caller and "
              "expired tokens, federated assertion, MAA token)", "found: " + ", ".join(leaks))
        found = [m.group(0)[:24] + b"..." for m in JWT_RE.finditer(blob)][:3]
        check(not found, f"{what}: no JWT-shaped string (any token, including the ones skrd got "
              "from IMDS, Entra and MAA)", repr(found))
        found = [m.group(0)[:10] + b"..." for m in PRIV_RE.finditer(blob)][:3]
        check(not found, f"{what}: no private JWK member", repr(found))
        check(not PEM_RE.search(blob), f"{what}: no PEM private key (transfer key)")
    # the search itself can fail: a planted line is found by the same code
    probe = b"x " + TEXT[next(iter(TEXT))].encode() + b" y"
    check(any(v.encode() in probe for v in TEXT.values()),
          "the search finds a known secret planted in a line (the check can fail)")


# ---- 4. mlock -----------------------------------------------------------------------------------

def mlock_run():
    if not IS_ROOT:
        # an unprivileged run has no CAP_IPC_LOCK: RLIMIT_MEMLOCK 0 is enough
        wrap = ["prlimit", "--memlock=0:0"]
    else:
        # root locks regardless of the limit (CAP_IPC_LOCK): take the capability away
        wrap = ["setpriv", "--bounding-set=-ipc_lock", "--inh-caps=-ipc_lock",
                "prlimit", "--memlock=0:0"]
    log = os.path.join(WORK, "hyg-skrd-mlock.log")
    args = wrap + [E.PROG, "--snp-device", "emulated:" + E.DIR, "--security-context-dir", E.SC,
                   "--imds-endpoint", E.EP["imds"], "--ca-file", os.path.join(E.DIR, "ca.pem"),
                   "--port", str(E.closed_port()), "-loglevel", "trace", "-logfile", log]
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    E.CHILDREN.append(p)
    E.LOGS.append(log)
    text = ""
    for _ in range(150 * E.WAIT):
        time.sleep(0.1)
        try:
            text = open(log).read()
        except OSError:
            continue
        if "ready in" in text or "not ready" in text or p.poll() is not None:
            break
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=30 * E.WAIT)
    line = next((ln for ln in text.splitlines() if "mlock() failed" in ln), "")
    check("warn" in line.lower(),
          "skrd without CAP_IPC_LOCK and with RLIMIT_MEMLOCK 0: the mlock warning is logged at "
          f"start ({line.strip()[:140]!r})", text[-1500:])
    # the control: skrd with the default limit logs no such warning
    normal = open(os.path.join(WORK, "hyg-skrd.log")).read()
    check("mlock() failed" not in normal and "skrd" in normal,
          "skrd with its default lock limit logs no mlock warning (the check can fail)")


# ---- 5. non-dumpable ------------------------------------------------------------------------------

def nondumpable_run():
    if not IS_ROOT:
        ok("# SKIP non-dumpable skrd as seen by a same-uid peer: needs root to run both as nobody "
           "(the unit test 'hygiene' checks skr_process_harden itself)")
        return
    port = E.closed_port()
    drop = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    real = os.path.join(os.environ["SKR_BUILD_DIR"], "src", "skrd")  # TMP is mode 0700
    # logs to stderr: WORK is not nobody's
    skrd = subprocess.Popen(drop + [real, "--snp-device", "none", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peer = subprocess.Popen(drop + ["sleep", "60"])
    E.CHILDREN += [skrd, peer]
    time.sleep(1.0)
    try:
        if skrd.poll() is not None:
            not_ok("skrd as nobody keeps running",
                   f"exit {skrd.returncode}: {skrd.stderr.read()[-500:]!r}")
            return
        owner = os.stat(f"/proc/{skrd.pid}/status").st_uid
        powner = os.stat(f"/proc/{peer.pid}/status").st_uid
        check(owner == 0 and powner == NOBODY,
              f"skrd run as nobody: its /proc/PID files are root's (non-dumpable), a plain "
              f"process of nobody owns its own (uids {owner} and {powner})")
        probe = ("import sys\nfor p in sys.argv[1:]:\n    try:\n        open(p, 'rb').read(1)\n"
                 "        print(p, 'readable')\n    except OSError as e:\n"
                 "        print(p, 'refused', e.errno)\n")
        r = subprocess.run(drop + ["python3", "-c", probe, f"/proc/{skrd.pid}/environ",
                                   f"/proc/{skrd.pid}/mem", f"/proc/{peer.pid}/environ"],
                           capture_output=True, text=True, timeout=30)
        lines = r.stdout.splitlines()
        check(len(lines) == 3 and "refused" in lines[0] and "refused" in lines[1] and
              "readable" in lines[2],
              "a same-uid process cannot read skrd's environment or memory, but can read a plain "
              "process's environment (the check can fail)", r.stdout + r.stderr)
    finally:
        skrd.send_signal(signal.SIGTERM)
        peer.kill()
        skrd.wait(timeout=30)
        peer.wait()


# ---- 6. skr ---------------------------------------------------------------------------------------

def skr(args, env_extra=None, stdin=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "SKR_"))}
    env.update(env_extra or {})
    p = subprocess.run([SKR] + args, capture_output=True, env=env, timeout=120 * E.WAIT)
    return p.returncode, p.stdout, p.stderr


def client_opts():
    return ["--snp-device", "emulated:" + E.DIR, "--security-context-dir", E.SC,
            "--imds-endpoint", E.EP["imds"], "--ca-file", os.path.join(E.DIR, "ca.pem")]


def skr_runs(keys, bearer):
    name = list(keys)[0]
    rel = ["release", "--maa", E.host_of(E.EP["maa"]), "--akv", E.host_of(E.EP["akv"])]
    tokfile = os.path.join(WORK, "skr-token")
    with open(tokfile, "w") as f:
        f.write(bearer + "\n")
    TEXT["skr caller token"] = bearer
    rc, out, err = skr(rel + ["--kid", name, "--token-file", tokfile] + client_opts())
    BODIES.append(("skr release stdout", out))
    BODIES.append(("skr release stderr", err))
    check(rc == 0, f"skr release {name} --token-file (text summary): exit 0 (both streams "
          "searched)", (out + err)[-500:])
    rc, out, err = skr(rel + ["--kid", name, "--out", "-"] + client_opts())
    BODIES.append(("skr release --out - stderr", err))
    want = keys[name][1]
    got = {}
    try:
        got = json.loads(out)
    except ValueError:
        pass
    check(rc == 0 and not E.compare_jwk(got, want), "skr release --out -: the key on stdout, "
          "as asked (stderr searched)", (out[:80] + err)[-500:])
    rc, out, err = skr(rel + ["--kid", "hyg-deny"] + client_opts())
    BODIES.append(("skr release denied stderr", err + out))
    check(rc == 1, f"skr release of a denied key: exit 1 (stderr searched)", err[-300:])
    rc, out, err = skr(rel + ["--kid", name, "--token-file", tokfile, "--set", "retries=0"] +
                       client_opts()[:2] + ["--imds-endpoint", f"http://127.0.0.1:{E.closed_port()}",
                                            "--ca-file", os.path.join(E.DIR, "ca.pem")])
    BODIES.append(("skr release, IMDS down (THIM), stderr", err + out))
    rc, out, err = skr(["token", "--resource", "https://vault.azure.net",
                        "--imds-endpoint", E.EP["imds"]])
    tok = out.decode().strip()
    BODIES.append(("skr token stderr", err))
    if rc == 0 and E.JWT_RE.fullmatch(tok.encode()) is not None:
        TEXT["skr token stdout"] = tok
        ok("skr token: the token on stdout (by design; stderr searched for it)")
    else:
        not_ok("skr token: a token on stdout", (out + err)[-300:])
    rc, out, err = skr(["token", "--decode", "--token-file", tokfile])
    sig = bearer.split(".")[2]
    check(rc == 0 and sig.encode() not in out + err,
          "skr token --decode: the token's signature is not printed", (out + err)[-300:])
    fed = os.path.join(WORK, "federated-token")
    wi = {"AZURE_CLIENT_ID": E.EMU_CFG["managed_identity"]["client_id"],
          "AZURE_TENANT_ID": E.EMU_CFG["tenant_id"], "AZURE_FEDERATED_TOKEN_FILE": fed,
          "AZURE_AUTHORITY_HOST": E.EP["imds"]}
    rc, out, err = skr(["token", "--resource", "https://vault.azure.net"], wi)
    BODIES.append(("skr token (workload identity) stdout+stderr", out + err if rc != 0 else err))
    check(rc == 0 and open(fed).read().encode() not in out + err,
          "skr token (workload identity): exit 0, the federated assertion on neither stream",
          err[-300:])
    rc, out, err = skr(["token", "--resource", "https://vault.azure.net", "--set", "retries=0",
                        "--imds-endpoint", f"http://127.0.0.1:{E.closed_port()}"])
    BODIES.append(("skr token, IMDS down, stderr", err + out))
    check(rc == 3, "skr token with IMDS down: exit 3 (stderr searched)", err[-300:])
    rc, out, err = skr(["attest", "--maa", E.host_of(E.EP["maa"])] + client_opts()[:4] +
                       ["--ca-file", os.path.join(E.DIR, "ca.pem")])
    BODIES.append(("skr attest stderr", err))
    if rc == 0:
        TEXT["skr attest stdout (MAA token)"] = out.decode().strip()
    check(rc == 0, "skr attest: an MAA token on stdout (by design; stderr searched for it)",
          err[-300:])


def main():
    try:
        bearer = E.imds_token()
        keys = {}
        for name, v in E.make_keys().items():
            keys["hyg-" + name.split("-", 1)[1]] = v
        for name, (imp, _) in keys.items():
            E.import_key(bearer, name, imp, E.release_policy())
        ok(f"keys imported: {', '.join(keys)}")
        lib_memory(keys, bearer)
        skrd_runs(keys, bearer)
        skr_runs(keys, bearer)
        mlock_run()
        nondumpable_run()
        faults_run(keys)
        logs_and_bodies()
    except Exception as e:  # noqa: BLE001 - one crash is one failed check
        import traceback
        not_ok(f"driver stopped: {e!r}", traceback.format_exc())
    finally:
        for p in E.CHILDREN:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
    sys.exit(1 if E.FAILS else 0)


if __name__ == "__main__":
    main()
