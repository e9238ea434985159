// sdk_test.mjs - the official Azure SDK for JS against `skr-emu serve` (issue #3 proof):
//   1. @azure/identity ManagedIdentityCredential gets a token from the IMDS emulator;
//   2. @azure/keyvault-keys creates an exportable RSA-HSM key with a release policy, gets it,
//      imports an exportable oct-HSM key, and releases both with a token from the MAA emulator;
//      the release JWS is checked and unwrapped here with node:crypto (RSA-OAEP + AES-KWP), not
//      with skr's code, and must give exactly the imported key / the created key's private half;
//   3. @azure/attestation reads the MAA emulator's signers (/certs) and OpenID metadata.
// Only the SNP report comes from skr (`skr report fetch --device emulated:DIR`), as it would come
// from the hardware; the MAA attest call is plain https because @azure/attestation 1.0.0 has no
// SevSnpVm API (attestSgxEnclave / attestOpenEnclave / attestTpm only).
//
// usage: node sdk_test.mjs SKR EMU_DIR   (skr-emu serve running on EMU_DIR; the caller sets
// AZURE_POD_IDENTITY_AUTHORITY_HOST = the imds URL and NODE_EXTRA_CA_CERTS = EMU_DIR/ca.pem)
// Prints TAP lines; exits 1 when any check failed.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import https from "node:https";
import os from "node:os";
import path from "node:path";

import { AttestationClient } from "@azure/attestation";
import { DefaultAzureCredential, ManagedIdentityCredential } from "@azure/identity";
import { KeyClient } from "@azure/keyvault-keys";

const [SKR, DIR] = process.argv.slice(2);
if (!SKR || !DIR) {
    console.error("usage: node sdk_test.mjs SKR EMU_DIR");
    process.exit(2);
}
const EP = JSON.parse(fs.readFileSync(path.join(DIR, "endpoints.json"), "utf8"));
const EMU = JSON.parse(fs.readFileSync(path.join(DIR, "emu.json"), "utf8"));
const CA = new crypto.X509Certificate(fs.readFileSync(path.join(DIR, "ca.pem")));

let n = 0;
let fails = 0;
async function check(desc, fn) {
    n += 1;
    try {
        await fn();
        console.log(`ok ${n} - ${desc}`);
        return true;
    } catch (e) {
        fails += 1;
        console.log(`not ok ${n} - ${desc}`);
        for (const line of String(e?.stack ?? e).split("\n").slice(0, 12)) {
            console.log(`#   ${line}`);
        }
        return false;
    }
}

const b64u = (buf) => Buffer.from(buf).toString("base64url");
const b64uDec = (s) => Buffer.from(s, "base64url");
const jwtPart = (tok, i) => JSON.parse(b64uDec(tok.split(".")[i]).toString("utf8"));
const sha256 = (buf) => crypto.createHash("sha256").update(buf).digest();

// POST JSON over https with the process's CA store (NODE_EXTRA_CA_CERTS adds the emulator CA).
function postJson(url, body) {
    return new Promise((resolve, reject) => {
        const data = Buffer.from(JSON.stringify(body));
        const req = https.request(url, {
            method: "POST",
            headers: { "Content-Type": "application/json", "Content-Length": data.length },
            timeout: 20000,
        }, (res) => {
            const chunks = [];
            res.on("data", (c) => chunks.push(c));
            res.on("end", () => resolve({ status: res.statusCode, body: Buffer.concat(chunks) }));
        });
        req.on("timeout", () => req.destroy(new Error(`timeout: ${url}`)));
        req.on("error", reject);
        req.end(data);
    });
}

// ---- 1. @azure/identity: ManagedIdentityCredential against the IMDS emulator ----
// AZURE_POD_IDENTITY_AUTHORITY_HOST makes MSAL's IMDS source use <host>/metadata/identity/oauth2/
// token instead of 169.254.169.254; with it set, identity skips its IMDS availability probe.
const credential = new ManagedIdentityCredential({ clientId: EMU.managed_identity.client_id });

await check("identity: AZURE_POD_IDENTITY_AUTHORITY_HOST is the IMDS emulator", () => {
    assert.equal(process.env.AZURE_POD_IDENTITY_AUTHORITY_HOST, EP.imds);
});

await check("identity: ManagedIdentityCredential token for https://vault.azure.net", async () => {
    const t = await credential.getToken("https://vault.azure.net/.default");
    assert.ok(t && typeof t.token === "string", "no token");
    const h = jwtPart(t.token, 0);
    const c = jwtPart(t.token, 1);
    assert.equal(h.alg, "RS256");
    assert.equal(h.kid, EMU.entra.kid);
    assert.equal(c.aud, "https://vault.azure.net");
    assert.equal(c.tid, EMU.tenant_id);
    assert.equal(c.oid, EMU.managed_identity.object_id);
    assert.equal(c.appid, EMU.managed_identity.client_id);
    assert.ok(t.expiresOnTimestamp > Date.now() + 60000, "token already expiring");
    assert.ok(Math.abs(t.expiresOnTimestamp / 1000 - c.exp) < 5, "expiresOn != exp claim");
    const cert = new crypto.X509Certificate(fs.readFileSync(path.join(DIR, "entra", "signing.pem")));
    const [hh, pp, ss] = t.token.split(".");
    assert.ok(crypto.verify("sha256", Buffer.from(`${hh}.${pp}`), cert.publicKey, b64uDec(ss)),
        "token signature does not verify with the emulator's Entra key");
});

await check("identity: system-assigned ManagedIdentityCredential (no selector)", async () => {
    const t = await new ManagedIdentityCredential().getToken("https://managedhsm.azure.net/.default");
    assert.equal(jwtPart(t.token, 1).aud, "https://managedhsm.azure.net");
});

await check("identity: DefaultAzureCredential reaches the IMDS emulator", async () => {
    const dac = new DefaultAzureCredential({
        managedIdentityClientId: EMU.managed_identity.client_id });
    const t = await dac.getToken("https://vault.azure.net/.default");
    assert.equal(jwtPart(t.token, 1).oid, EMU.managed_identity.object_id);
});

await check("identity: an unknown client_id is refused by IMDS", async () => {
    const other = new ManagedIdentityCredential({ clientId: crypto.randomUUID() });
    await assert.rejects(other.getToken("https://vault.azure.net/.default"),
        (e) => /Identity not found/.test(e.message));
});

// identity's availability probe (DefaultAzureCredential without AZURE_POD_IDENTITY_AUTHORITY_HOST,
// i.e. only ever against 169.254.169.254): GET of the token path with no query and no Metadata
// header; any quick answer means "available". IMDS answers it 400 as below.
await check("identity: the IMDS probe request gets IMDS's 400 answer", async () => {
    const res = await new Promise((resolve, reject) => {
        const req = http.get(`${EP.imds}/metadata/identity/oauth2/token`,
            { headers: { Accept: "application/json" }, timeout: 5000 }, (r) => {
                const chunks = [];
                r.on("data", (c) => chunks.push(c));
                r.on("end", () => resolve({ status: r.statusCode, body: Buffer.concat(chunks) }));
            });
        req.on("timeout", () => req.destroy(new Error("probe timeout")));
        req.on("error", reject);
    });
    assert.equal(res.status, 400);
    const e = JSON.parse(res.body);
    assert.equal(e.error, "invalid_request");
    assert.match(e.error_description, /metadata header/i);
});

// ---- 2. @azure/keyvault-keys against the Key Vault emulator, MAA token from the MAA emulator ----
const transfer = crypto.generateKeyPairSync("rsa", { modulusLength: 2048 });
const tjwk = transfer.publicKey.export({ format: "jwk" });
const runtimeKey = { e: tjwk.e, key_ops: ["encrypt"], kid: "transfer-key", kty: "RSA", n: tjwk.n };
const runtime = Buffer.from(JSON.stringify({ keys: [runtimeKey] }));
const policyText = Buffer.from(
    fs.readFileSync(path.join(DIR, "security-context", "security-policy-base64"), "utf8").trim(),
    "base64");
const hostData = sha256(policyText).toString("hex");
let maaToken;

await check("maa: SNP report from the emulated platform, MAA token (plain https)", async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "skr-sdk-js-"));
    try {
        const rt = path.join(tmp, "runtime.json");
        fs.writeFileSync(rt, runtime);
        execFileSync(SKR, ["report", "fetch", "--device", `emulated:${DIR}`, "--runtime-data", rt,
            "--format", "bin", "--out", path.join(tmp, "r.bin"),
            "--certs-out", path.join(tmp, "chain.pem")], { stdio: ["ignore", "ignore", "pipe"] });
        const report = fs.readFileSync(path.join(tmp, "r.bin"));
        const chain = fs.readFileSync(path.join(tmp, "chain.pem"));
        assert.deepEqual(report.subarray(0x50, 0x70), sha256(runtime), "REPORT_DATA");
        const bundle = JSON.stringify({ SnpReport: b64u(report), VcekCertChain: b64u(chain) });
        const res = await postJson(`${EP.maa}/attest/SevSnpVm?api-version=2022-08-01`, {
            report: b64u(Buffer.from(bundle)),
            runtimeData: { data: b64u(runtime), dataType: "JSON" },
            initTimeData: { data: b64u(policyText), dataType: "Binary" },
            nonce: "sdk-js",
        });
        assert.equal(res.status, 200, `MAA attest: ${res.body.toString().slice(0, 300)}`);
        maaToken = JSON.parse(res.body).token;
        const c = jwtPart(maaToken, 1);
        assert.equal(c["x-ms-sevsnpvm-hostdata"], hostData);
        assert.equal(c["x-ms-runtime"].keys[0].n, tjwk.n);
    } finally {
        fs.rmSync(tmp, { recursive: true, force: true });
    }
});

// The SDK authenticates by challenge: the first request goes out without a token, the 401's
// WWW-Authenticate names resource="https://vault.azure.net", and the SDK checks that the vault's
// host name ends with ".vault.azure.net" before asking the credential for a token. The emulator
// listens on 127.0.0.1, which can never pass that check, so it is turned off here
// (disableChallengeResourceVerification, the SDK's documented switch for custom vault hosts).
// The client speaks the SDK's default api-version (2025-07-01).
const keys = new KeyClient(EP.akv, credential, { disableChallengeResourceVerification: true });
const policy = {
    version: "1.0.0",
    anyOf: [{
        authority: EP.maa,
        allOf: [
            { claim: "x-ms-sevsnpvm-hostdata", equals: hostData },
            { claim: "x-ms-sevsnpvm-is-debuggable", equals: false },
            { claim: "x-ms-attestation-type", equals: "sevsnpvm" },
        ],
    }],
};
const releasePolicy = { encodedPolicy: new TextEncoder().encode(JSON.stringify(policy)) };
const suffix = crypto.randomBytes(4).toString("hex");
const rsaName = `sdk-rsa-${suffix}`;
const octName = `sdk-oct-${suffix}`;
const octSecret = crypto.randomBytes(32);
let rsaKey;
let octKey;

function checkPolicy(props) {
    assert.ok(props.releasePolicy?.encodedPolicy, "no release policy");
    const p = JSON.parse(Buffer.from(props.releasePolicy.encodedPolicy).toString("utf8"));
    assert.equal(p.anyOf[0].authority.replace(/\/$/, ""), EP.maa);
    assert.equal(p.anyOf[0].allOf.length, 3);
}

await check("keyvault: createRsaKey(hsm, exportable, releasePolicy) -> RSA-HSM", async () => {
    rsaKey = await keys.createRsaKey(rsaName, { hsm: true, keySize: 2048, exportable: true,
        releasePolicy });
    assert.equal(rsaKey.name, rsaName);
    assert.equal(rsaKey.keyType, "RSA-HSM");
    assert.equal(rsaKey.properties.exportable, true);
    assert.equal(rsaKey.properties.enabled, true);
    assert.equal(rsaKey.key.n.length, 256);
    assert.match(rsaKey.properties.version, /^[0-9a-f]{32}$/);
    assert.equal(rsaKey.id, `${EP.akv}/keys/${rsaName}/${rsaKey.properties.version}`);
    checkPolicy(rsaKey.properties);
});

await check("keyvault: createKey(oct-HSM) without a policy is refused when exportable", async () => {
    await assert.rejects(keys.createKey(`sdk-bad-${suffix}`, "oct-HSM",
        { keySize: 256, exportable: true }),
        (e) => e.statusCode === 400 && /AKV\.SKR\.1004/.test(e.message));
});

await check("keyvault: getKey returns the created key", async () => {
    const k = await keys.getKey(rsaName);
    assert.equal(k.id, rsaKey.id);
    assert.deepEqual(Buffer.from(k.key.n), Buffer.from(rsaKey.key.n));
    assert.equal(k.properties.exportable, true);
    checkPolicy(k.properties);
    const v = await keys.getKey(rsaName, { version: rsaKey.properties.version });
    assert.equal(v.id, rsaKey.id);
});

await check("keyvault: getKey of a missing key is 404", async () => {
    await assert.rejects(keys.getKey(`sdk-missing-${suffix}`),
        (e) => e.statusCode === 404 && e.code === "KeyNotFound");
});

await check("keyvault: importKey oct-HSM (hardwareProtected, exportable, releasePolicy)", async () => {
    octKey = await keys.importKey(octName, { kty: "oct-HSM", k: octSecret,
        keyOps: ["encrypt", "decrypt"] }, { hardwareProtected: true, exportable: true,
        releasePolicy });
    assert.equal(octKey.name, octName);
    assert.equal(octKey.keyType, "oct-HSM");
    assert.equal(octKey.key.k, undefined, "the service must not return k");
    assert.equal(octKey.properties.exportable, true);
    checkPolicy(octKey.properties);
});

// The release JWS: RS256 over header.payload with x5c[0], x5c[0] issued by the emulator CA,
// x5t#S256 its thumbprint; payload.response.key.key.key_hsm unwraps to the key.
function openRelease(jws, kid, enc) {
    const [h, p, s] = jws.split(".");
    const hdr = jwtPart(jws, 0);
    assert.equal(hdr.alg, "RS256");
    const leaf = new crypto.X509Certificate(Buffer.from(hdr.x5c[0], "base64"));
    assert.ok(leaf.verify(CA.publicKey), "x5c[0] is not issued by the emulator CA");
    assert.equal(hdr["x5t#S256"], b64u(sha256(leaf.raw)));
    assert.ok(crypto.verify("sha256", Buffer.from(`${h}.${p}`), leaf.publicKey, b64uDec(s)),
        "release JWS signature");
    const payload = jwtPart(jws, 1);
    assert.equal(payload.request.kid, kid);
    assert.equal(payload.request.enc, enc);
    const key = payload.response.key.key;
    assert.equal(key.kid, kid);
    const kh = JSON.parse(b64uDec(key.key_hsm).toString("utf8"));
    assert.equal(kh.header.kid, "transfer-key");
    assert.equal(kh.header.enc, enc);
    const ct = b64uDec(kh.ciphertext);
    const oaepHash = { CKM_RSA_AES_KEY_WRAP: "sha1", RSA_AES_KEY_WRAP_256: "sha256",
        RSA_AES_KEY_WRAP_384: "sha384" }[enc];
    const aes = crypto.privateDecrypt({ key: transfer.privateKey, oaepHash,
        padding: crypto.constants.RSA_PKCS1_OAEP_PADDING }, ct.subarray(0, 256));
    assert.equal(aes.length, 32);
    // RFC 5649 AES key wrap with padding; OpenSSL checks the AIV, MLI and the zero padding.
    const d = crypto.createDecipheriv("id-aes256-wrap-pad", aes, Buffer.from("A65959A6", "hex"));
    return { key, plain: Buffer.concat([d.update(ct.subarray(256)), d.final()]) };
}

await check("keyvault: releaseKey(oct-HSM, MAA token), default enc: unwraps to the imported key",
    async () => {
        assert.ok(maaToken, "no MAA token");
        const r = await keys.releaseKey(octName, maaToken);
        const { key, plain } = openRelease(r.value, octKey.id, "CKM_RSA_AES_KEY_WRAP");
        assert.equal(key.kty, "oct-HSM");
        assert.ok(crypto.timingSafeEqual(plain, octSecret), "unwrapped key != imported key");
    });

await check("keyvault: releaseKey(RSA-HSM, nonce, RSA_AES_KEY_WRAP_256): PKCS#8 of the key",
    async () => {
        assert.ok(maaToken, "no MAA token");
        const r = await keys.releaseKey(rsaName, maaToken, { nonce: "sdk-nonce",
            algorithm: "RSA_AES_KEY_WRAP_256", version: rsaKey.properties.version });
        const { plain } = openRelease(r.value, rsaKey.id, "RSA_AES_KEY_WRAP_256");
        assert.equal(jwtPart(r.value, 1).request.nonce, "sdk-nonce");
        const priv = crypto.createPrivateKey({ key: plain, format: "der", type: "pkcs8" });
        const pub = crypto.createPublicKey(priv).export({ format: "jwk" });
        assert.equal(pub.n, b64u(rsaKey.key.n), "released private key is not the created key");
        assert.equal(pub.e, b64u(rsaKey.key.e));
    });

await check("keyvault: releaseKey with a policy the token does not meet is 403", async () => {
    const deny = structuredClone(policy);
    deny.anyOf[0].allOf[0].equals = "00".repeat(32);
    const name = `sdk-deny-${suffix}`;
    await keys.importKey(name, { kty: "oct-HSM", k: crypto.randomBytes(32) }, {
        hardwareProtected: true, exportable: true,
        releasePolicy: { encodedPolicy: new TextEncoder().encode(JSON.stringify(deny)) } });
    await assert.rejects(keys.releaseKey(name, maaToken),
        (e) => e.statusCode === 403 && /x-ms-sevsnpvm-hostdata/.test(e.message));
});

// ---- 3. @azure/attestation: signers and OpenID metadata of the MAA emulator ----
const attestation = new AttestationClient(EP.maa);

await check("attestation: getAttestationSigners() lists the MAA signing certificate", async () => {
    const signers = await attestation.getAttestationSigners();
    assert.ok(signers.length >= 1);
    const s = signers.find((x) => x.keyId === EMU.maa.kid);
    assert.ok(s, `no signer with kid ${EMU.maa.kid}`);
    const want = new crypto.X509Certificate(fs.readFileSync(path.join(DIR, "maa", "signing.pem")));
    assert.deepEqual(new crypto.X509Certificate(s.certificates[0]).raw, want.raw);
    if (maaToken) {
        const [h, p, sig] = maaToken.split(".");
        assert.equal(jwtPart(maaToken, 0).kid, s.keyId);
        assert.ok(crypto.verify("sha256", Buffer.from(`${h}.${p}`),
            new crypto.X509Certificate(s.certificates[0]).publicKey, b64uDec(sig)),
            "the MAA token does not verify with the signer the SDK returned");
    }
});

await check("attestation: getOpenIdMetadata() has issuer and jwks_uri", async () => {
    const md = await attestation.getOpenIdMetadata();
    assert.equal(md.issuer.replace(/\/$/, ""), EP.maa);
    assert.equal(md.jwks_uri, `${EP.maa}/certs`);
    if (maaToken) {
        assert.equal(jwtPart(maaToken, 1).iss, md.issuer);
    }
});

console.log(`1..${n}`);
console.log(`# ${n - fails} passed, ${fails} failed`);
process.exit(fails === 0 ? 0 : 1);
