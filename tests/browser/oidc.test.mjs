// A server nobody here wrote: node oidc-provider (OpenID Certified) as the
// authorization server, with its own login and consent pages, beside a small FHIR
// server that checks each token by introspection. The test app (pages/app.html, the
// release build of the package) launches, refreshes and signs out against it, with
// id_tokens signed RS256 and ES256.
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { createServer } from "node:http";
import { dirname, join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import Provider from "oidc-provider";
import { serve, startBrowser, tearDown, withPage } from "./harness.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const ISSUER = "http://127.0.0.1:18099";
const FHIR = "http://127.0.0.1:18100/fhir";
const APP = "http://127.0.0.1:18097";
const SCOPE = "openid fhirUser launch/patient offline_access patient/*.rs";
const RESOURCE_SERVER = { client_id: "fhir-server", client_secret: "fhir-server-secret" };

const jwk = (type, options, alg, kid) => ({
  ...generateKeyPairSync(type, options).privateKey.export({ format: "jwk" }), alg, use: "sig", kid,
});
const app = (alg) => ({
  client_id: `app-${alg}`,
  redirect_uris: [`${APP}/app.html`],
  token_endpoint_auth_method: "none",
  grant_types: ["authorization_code", "refresh_token"],
  id_token_signed_response_alg: alg,
});

const provider = new Provider(ISSUER, {
  clients: [
    app("RS256"),
    app("ES256"),
    { ...RESOURCE_SERVER, grant_types: [], redirect_uris: [], response_types: [] },
  ],
  jwks: { keys: [jwk("rsa", { modulusLength: 2048 }, "RS256", "rsa"), jwk("ec", { namedCurve: "P-256" }, "ES256", "ec")] },
  scopes: SCOPE.split(" "),
  claims: { openid: ["sub"], fhirUser: ["fhirUser"] },
  conformIdTokenClaims: false,
  findAccount: (_ctx, id) => ({ accountId: id, claims: () => ({ sub: id, fhirUser: `${FHIR}/Patient/1` }) }),
  features: { introspection: { enabled: true }, revocation: { enabled: true } },
});
// SMART's launch context rides in the token response.
provider.use(async (ctx, next) => {
  await next();
  if (ctx.oidc?.route === "token" && ctx.body?.access_token) ctx.body.patient = "1";
});

/** The FHIR server: discovery, and Patient/1 for a token the provider says is active. */
const fhirServer = createServer(async (request, response) => {
  const cors = { "access-control-allow-origin": "*", "access-control-allow-headers": "authorization, accept, content-type" };
  const json = (status, body) => response.writeHead(status, { ...cors, "content-type": "application/fhir+json" }).end(JSON.stringify(body));
  const path = new URL(request.url, FHIR).pathname;
  if (request.method === "OPTIONS") return response.writeHead(204, cors).end();
  if (path === "/fhir/.well-known/smart-configuration") {
    return json(200, {
      issuer: ISSUER,
      authorization_endpoint: `${ISSUER}/auth`,
      token_endpoint: `${ISSUER}/token`,
      revocation_endpoint: `${ISSUER}/token/revocation`,
      jwks_uri: `${ISSUER}/jwks`,
      authorization_response_iss_parameter_supported: true,
      code_challenge_methods_supported: ["S256"],
      capabilities: ["launch-standalone", "client-public", "context-standalone-patient", "permission-offline", "sso-openid-connect"],
    });
  }
  const token = request.headers.authorization?.match(/^Bearer (.+)$/)?.[1];
  const introspection = token && await fetch(`${ISSUER}/token/introspection`, {
    method: "POST",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      authorization: `Basic ${Buffer.from(`${RESOURCE_SERVER.client_id}:${RESOURCE_SERVER.client_secret}`).toString("base64")}`,
    },
    body: new URLSearchParams({ token }),
  }).then((r) => r.json());
  if (!introspection?.active) return json(401, { resourceType: "OperationOutcome", issue: [{ severity: "error", code: "login" }] });
  if (path === "/fhir/Patient/1") return json(200, { resourceType: "Patient", id: "1", name: [{ family: "Kanfeld" }] });
  json(404, { resourceType: "OperationOutcome", issue: [{ severity: "error", code: "not-found" }] });
});

let server;
before(async () => {
  server = provider.listen(18099, "127.0.0.1");
  await new Promise((resolve) => fhirServer.listen(18100, "127.0.0.1", resolve));
  await Promise.all([serve(18097, { "/pkg/": join(here, "..", "..", "client-wasm", "pkg"), "/": join(here, "pages") }), startBrowser()]);
});
after(async () => {
  server?.close();
  fhirServer.close();
  await tearDown();
});

for (const alg of ["RS256", "ES256"]) {
  test(`oidc-provider, id_token ${alg}: launch through its login and consent, refresh, sign out`, () =>
    withPage(`oidc-${alg}`, async (page) => {
      const query = new URLSearchParams({ client_id: `app-${alg}`, server: FHIR, scope: SCOPE });
      await page.goto(`${APP}/app.html?${query}`);
      await page.click("#launch");
      await page.fill("input[name=login]", "bernie");
      await page.fill("input[name=password]", "any");
      await page.click("button[type=submit]");
      await page.click("button[type=submit]"); // consent
      await page.waitForSelector("#out[data-done]");
      const shown = JSON.parse(await page.locator("#out").textContent());
      assert.equal(shown.patient, "1", JSON.stringify(shown));
      const state = await page.evaluate(() => client.state);
      const header = JSON.parse(Buffer.from(state.idToken.split(".")[0], "base64url"));
      assert.equal(header.alg, alg);
      assert.equal(state.idTokenClaims.iss, ISSUER);
      assert.equal(state.fhirUser, `${FHIR}/Patient/1`);
      assert.ok(state.refreshToken, "prompt=consent got offline_access through (OpenID Connect Core §11)");

      const refreshed = await page.evaluate(async () => {
        const before = client.state.accessToken;
        await client.refresh();
        return client.state.accessToken !== before && (await client.patient()).id;
      });
      assert.equal(refreshed, "1", "a new access token that the FHIR server accepts");

      const afterSignOut = await page.evaluate(async () => {
        await client.revoke();
        return client.patient().then(() => "still reads", (e) => e.code);
      });
      assert.equal(afterSignOut, "session_expired", "the provider revoked the grant");
    }));
}
