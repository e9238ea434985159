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
import json
import os
import subprocess
import sys
import tempfile

from emu_client import Emu, b64u_dec, oct_import, transfer_key


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


def emu(skr, d):
    emu = Emu(d)

    # a real MAA token: transfer key, report bound to it, attestation (as e2e_release.py)
    _, _, runtime = transfer_key()
    report, pem = emu.report(skr, runtime)
    st, body = emu.attest(report, pem, runtime, emu.context_file("security-policy-base64"))
    if st != 200:
        print(f"MAA attest failed: {st} {body[:300]!r}")
        return 1
    token = json.loads(body)["token"]
    claims = json.loads(b64u_dec(token.split(".")[1]))
    st, body, bearer = emu.vault_bearer()
    if bearer is None:
        print(f"IMDS failed: {st} {body[:200]!r}")
        return 1

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
            st, body = emu.import_key(f"agree{i}", oct_import(os.urandom(32), policy), bearer)
            if st != 200:
                bad += 1
                print(f"DISAGREE {name}: import failed: {st} {body[:200]!r}")
                continue
            st, body = emu.release(f"agree{i}", token, bearer)
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
