// smart-fhir-client outside a browser: a Node back end or script uses the same npm
// package (release build) for CCRI's client-credentials flow, SMART Backend Services
// and dynamic registration. WebCrypto and fetch are Node's own.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { startMock, tearDown } from "./harness.mjs";

const pkg = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "client-wasm", "pkg");
const { initSync, authorize, clientCredentials, ready, register } = await import(join(pkg, "smart_fhir_client.js"));
initSync({ module: readFileSync(join(pkg, "smart_fhir_client_bg.wasm")) });

let iss;
before(async () => {
  iss = await startMock(18083);
});
after(tearDown);

/** A rejection's SmartError code. */
async function codeOf(promise) {
  const error = await promise.then(() => assert.fail("resolved"), (e) => e);
  assert.equal(error.name, "SmartError");
  return error.code;
}

test("a registered confidential client gets a token with its secret (HTTP Basic)", async () => {
  const client = await register(iss, {
    client_name: "nightly job",
    grant_types: ["client_credentials"],
    token_endpoint_auth_method: "client_secret_basic",
    scope: "system/Patient.rs",
  });
  assert.ok(client.client_id && client.client_secret);
  const token = await clientCredentials({ iss, clientId: client.client_id, clientSecret: client.client_secret, scope: "system/Patient.rs" });
  assert.equal(token.token_type.toLowerCase(), "bearer");
  assert.equal(token.scope, "system/Patient.rs");
  const patient = await fetch(`${iss}/Patient/1`, { headers: { Authorization: `Bearer ${token.access_token}` } });
  assert.equal((await patient.json()).id, "1");

  assert.equal(await codeOf(clientCredentials({ iss, clientId: client.client_id, clientSecret: "wrong" })), "invalid_client");
  // One credential, never both or none.
  const both = { iss, clientId: client.client_id, clientSecret: client.client_secret, privateJwk: { kty: "EC" } };
  assert.equal(await codeOf(clientCredentials(both)), "invalid_options");
  assert.equal(await codeOf(clientCredentials({ iss, clientId: client.client_id })), "invalid_options");
});

test("SMART Backend Services: an ES384 key signs the assertion with Node's WebCrypto", async () => {
  const pair = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-384" }, true, ["sign", "verify"]);
  const kid = "node-es384";
  const publicJwk = { ...(await crypto.subtle.exportKey("jwk", pair.publicKey)), kid };
  const privateJwk = { ...(await crypto.subtle.exportKey("jwk", pair.privateKey)), kid };
  const client = await register(iss, {
    client_name: "export service",
    grant_types: ["client_credentials"],
    token_endpoint_auth_method: "private_key_jwt",
    jwks: { keys: [publicJwk] },
    scope: "system/Observation.rs",
  });
  const token = await clientCredentials({ iss, clientId: client.client_id, privateJwk, scope: "system/Observation.rs" });
  assert.ok(token.access_token);
  assert.ok(token.expires_in <= 300);
});

test("browser-only flows say so instead of failing obscurely", async () => {
  const options = { iss, clientId: "demo-app", scope: "launch/patient", redirectUri: "http://127.0.0.1:5173/app.html", noRedirect: true };
  assert.equal(await codeOf(authorize(options)), "invalid_options"); // no sessionStorage in Node
  const url = await authorize({ ...options, storage: "memory" });
  assert.match(url, /code_challenge_method=S256/);
  assert.equal(await codeOf(ready({ storage: "memory" })), "invalid_options"); // no page URL to read
  assert.equal(await codeOf(register(iss, "not an object")), "invalid_options");
});
