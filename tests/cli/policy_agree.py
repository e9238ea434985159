#!/usr/bin/env python3
"""policy_agree.py - `skr policy check` against the release decisions it must agree with.

usage: policy_agree.py table SKR CASES.json
         every case of the shared decision table (tests/data/policy_cases.json): the exit code
         of `skr policy check POLICY CLAIMS --issuer ISS` (0 allow, 1 deny) must be the
         expected decision, and the printed verdict must say the same.
       policy_agree.py emu SKR EMU_DIR   (skr-emu serve running on EMU_DIR)
         a real MAA token from the emulator; for each policy of a list, a key is imported with
         that policy through the emulator's Key Vault and released with the token; the
         emulator's decision (200 or 403) must be what `skr policy check POLICY TOKEN` says.
Prints one line per case; exits 1 when any disagrees.
"""
import base64
import json
import os
import ssl
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request


def run_check(skr, tmp, name, policy, target, issuer=None):
    pol = os.path.join(tmp, name + ".policy.json")
    with open(pol, "w") as f:
        json.dump(policy, f)
    args = [skr, "policy", "check", pol, target]
    if issuer is not None:
        args += ["--issuer", issuer]
    r = subprocess.run(args, capture_output=True, text=True)
    return r.returncode, r.stdout + r.stderr


def verdict_ok(rc, out):
    """The exit code and the printed verdict agree."""
    return (rc == 0 and ": ALLOW\n" in out) or (rc == 1 and ": DENY\n" in out)


def table(skr, path):
    cases = json.load(open(path))
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        for i, c in enumerate(cases):
            claims = os.path.join(tmp, f"c{i}.claims.json")
            with open(claims, "w") as f:
                json.dump(c["claims"], f)
            rc, out = run_check(skr, tmp, f"c{i}", c["policy"], claims, c["iss"])
            want = 0 if c["allow"] else 1
            if rc == want and verdict_ok(rc, out):
                print(f"agree {c['name']}: {'allow' if c['allow'] else 'deny'}")
            else:
                bad += 1
                print(f"DISAGREE {c['name']}: expected exit {want}, got {rc}")
                print("\n".join("    " + line for line in out.splitlines()[:12]))
    print(f"{len(cases) - bad} of {len(cases)} cases agree")
    return 1 if bad or len(cases) < 40 else 0


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def b64u_dec(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def emu(skr, d):
    from cryptography.hazmat.primitives.asymmetric import rsa

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

    # a real MAA token: transfer key, report bound to it, attestation (as e2e_release.py)
    tkey = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pub = tkey.public_key().public_numbers()
    jwk = {"e": b64u(pub.e.to_bytes(3, "big")), "key_ops": ["encrypt"], "kid": "transfer-key",
           "kty": "RSA", "n": b64u(pub.n.to_bytes(256, "big"))}
    runtime = json.dumps({"keys": [jwk]}, sort_keys=True, separators=(",", ":")).encode()
    with tempfile.TemporaryDirectory() as tmp:
        rt = os.path.join(tmp, "runtime.json")
        open(rt, "wb").write(runtime)
        rep, chain = os.path.join(tmp, "r.bin"), os.path.join(tmp, "chain.pem")
        subprocess.run([skr, "report", "fetch", "--device", "emulated:" + d, "--runtime-data", rt,
                        "--format", "bin", "--out", rep, "--certs-out", chain], check=True,
                       stderr=subprocess.DEVNULL)
        report, pem = open(rep, "rb").read(), open(chain, "rb").read()
    policy_text = base64.b64decode(open(os.path.join(d, "security-context",
                                                     "security-policy-base64")).read())
    bundle = json.dumps({"SnpReport": b64u(report), "VcekCertChain": b64u(pem)}).encode()
    st, body = call("POST", ep["maa"] + "/attest/SevSnpVm?api-version=2022-08-01",
                    {"report": b64u(bundle),
                     "runtimeData": {"data": b64u(runtime), "dataType": "JSON"},
                     "initTimeData": {"data": b64u(policy_text), "dataType": "Binary"}})
    if st != 200:
        print(f"MAA attest failed: {st} {body[:300]!r}")
        return 1
    token = json.loads(body)["token"]
    claims = json.loads(b64u_dec(token.split(".")[1]))
    st, body = call("GET", ep["imds"] + "/metadata/identity/oauth2/token?api-version=2018-02-01"
                    "&resource=https%3A%2F%2Fvault.azure.net", headers={"Metadata": "true"})
    if st != 200:
        print(f"IMDS failed: {st} {body[:200]!r}")
        return 1
    bearer = {"Authorization": "Bearer " + json.loads(body)["access_token"]}

    iss = claims["iss"]
    hd = claims["x-ms-sevsnpvm-hostdata"]

    def p(*conds, authority=iss, op="allOf", version="1.0.0"):
        return {"version": version, "anyOf": [{"authority": authority, op: list(conds)}]}

    def eq(name, value):
        return {"claim": name, "equals": value}

    cases = [
        ("hostdata_and_debug", p(eq("x-ms-sevsnpvm-hostdata", hd),
                                 eq("x-ms-sevsnpvm-is-debuggable", "false"))),
        ("hostdata_wrong", p(eq("x-ms-sevsnpvm-hostdata", "00" * 32))),
        ("hostdata_upper_case", p(eq("x-ms-sevsnpvm-hostdata", hd.upper()))),
        ("debuggable_bool", p(eq("x-ms-sevsnpvm-is-debuggable", False))),
        ("debuggable_required_true", p(eq("x-ms-sevsnpvm-is-debuggable", "true"))),
        ("vmpl_string", p(eq("x-ms-sevsnpvm-vmpl", "0"))),
        ("vmpl_integer", p(eq("x-ms-sevsnpvm-vmpl", 0))),
        ("vmpl_00", p(eq("x-ms-sevsnpvm-vmpl", "00"))),
        ("attestation_type", p(eq("x-ms-attestation-type", "sevsnpvm"))),
        ("authority_trailing_slash", p(eq("x-ms-sevsnpvm-hostdata", hd), authority=iss + "/")),
        ("authority_other", p(eq("x-ms-sevsnpvm-hostdata", hd),
                              authority="https://sharedeus2.eus2.attest.azure.net")),
        ("second_authority_matches", {"version": "1.0.0", "anyOf": [
            {"authority": "https://other.attest.azure.net",
             "allOf": [eq("x-ms-sevsnpvm-hostdata", hd)]},
            {"authority": iss, "allOf": [eq("x-ms-sevsnpvm-hostdata", hd)]}]}),
        ("any_of_one_true", p(eq("x-ms-sevsnpvm-hostdata", "00" * 32),
                              eq("x-ms-attestation-type", "sevsnpvm"), op="anyOf")),
        ("nested_group_fails", p(eq("x-ms-attestation-type", "sevsnpvm"),
                                 {"anyOf": [eq("x-ms-sevsnpvm-vmpl", 1),
                                            {"allOf": [eq("x-ms-sevsnpvm-vmpl", 0),
                                                       eq("x-ms-sevsnpvm-is-debuggable", True)]}]})),
        ("nested_group_passes", p({"anyOf": [eq("x-ms-sevsnpvm-vmpl", 1),
                                             {"allOf": [eq("x-ms-sevsnpvm-vmpl", 0),
                                                        eq("x-ms-sevsnpvm-hostdata", hd)]}]})),
        ("legacy_0_2", {"version": "0.2", "anyOf": [{"authority": iss, "allOf": [
            {"claim": "x-ms-sevsnpvm-hostdata", "condition": "equals", "value": hd}]}]}),
        ("version_1_0", p(eq("x-ms-sevsnpvm-hostdata", hd), version="1.0")),
        ("claim_missing", p(eq("x-ms-no-such-claim", "x"))),
        ("claim_object", p(eq("x-ms-runtime", "x"))),
        ("claim_dotted_array", p(eq("x-ms-runtime.keys", "x"))),
    ]
    bad = allows = denies = 0
    with tempfile.TemporaryDirectory() as tmp:
        tok = os.path.join(tmp, "maa.jwt")
        open(tok, "w").write(token + "\n")
        for i, (name, policy) in enumerate(cases):
            imp = {"key": {"kty": "oct-HSM", "k": b64u(os.urandom(32)),
                           "key_ops": ["encrypt", "decrypt"]},
                   "hsm": True, "attributes": {"exportable": True},
                   "release_policy": {"contentType": "application/json; charset=utf-8",
                                      "data": b64u(json.dumps(policy).encode())}}
            st, body = call("PUT", ep["akv"] + f"/keys/agree{i}?api-version=7.4", imp, bearer)
            if st != 200:
                bad += 1
                print(f"DISAGREE {name}: import failed: {st} {body[:200]!r}")
                continue
            st, body = call("POST", ep["akv"] + f"/keys/agree{i}/release?api-version=7.4",
                            {"target": token, "enc": "RSA_AES_KEY_WRAP_256"}, bearer)
            if st not in (200, 403):
                bad += 1
                print(f"DISAGREE {name}: release gave {st} {body[:200]!r}")
                continue
            rc, out = run_check(skr, tmp, f"e{i}", policy, tok)
            released = st == 200
            allows += released
            denies += not released
            if rc == (0 if released else 1) and verdict_ok(rc, out):
                print(f"agree {name}: emulator {'released' if released else 'denied (403)'}")
            else:
                bad += 1
                print(f"DISAGREE {name}: emulator {st}, skr policy check exit {rc}")
                print("\n".join("    " + line for line in out.splitlines()[:12]))
    print(f"{len(cases) - bad} of {len(cases)} agree ({allows} released, {denies} denied)")
    return 1 if bad or allows < 3 or denies < 3 else 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "table":
        sys.exit(table(sys.argv[2], sys.argv[3]))
    if len(sys.argv) == 4 and sys.argv[1] == "emu":
        sys.exit(emu(sys.argv[2], sys.argv[3]))
    sys.exit(__doc__)
