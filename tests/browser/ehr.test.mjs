// What EHRs do to apps, on the mock: a consent that grants less than asked, a
// practitioner-only EHR launch, a standalone launch that picks its encounter, launch
// links (an EHR launch, and a standalone one through the link as iss), the
// launch context (fhirContext, intent, tenant) reaching client.state, the clients
// page's edit and delete, and a launch over --tls. The demo app and the bare test
// app (pages/app.html) with the release build of the package.
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import {
  MOCK, consent, docScreenshot, fhir, insecureJson, launchFromDemo, logIn, serve, setUp, startMock, tearDown, textOf, withPage,
} from "./harness.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const AUTH = `${MOCK}/ccri-auth`;
let app, tlsFhir;

before(async () => {
  await setUp();
  [app, tlsFhir] = await Promise.all([
    serve(18097, { "/pkg/": join(here, "..", "..", "client-wasm", "pkg"), "/": join(here, "pages") }),
    startMock(18086, "--tls"),
  ]);
});
after(tearDown);

/** Registers the test app at `auth`; `switches` are the mock's skip_login / skip_auth. */
async function register(switches = {}, auth = AUTH) {
  const metadata = { client_name: "EHR tests", redirect_uris: [`${app}/app.html`], token_endpoint_auth_method: "none", ...switches };
  const { status, body } = auth.startsWith("https:")
    ? await insecureJson(`${auth}/register`, { method: "POST", body: metadata })
    : await fetch(`${auth}/register`, {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(metadata),
    }).then(async (r) => ({ status: r.status, body: await r.json() }));
  assert.equal(status, 201, JSON.stringify(body));
  return body.client_id;
}

/** What the test app shows once it is done. */
async function result(page) {
  await page.waitForSelector("#out[data-done]");
  return JSON.parse(await page.locator("#out").textContent());
}

/** An EHR launch of the test app from the launcher's link, with `choices`. */
function launcherLink(clientId, choices) {
  const launchUrl = `${app}/app.html?client_id=${clientId}&auto=1&scope=${encodeURIComponent("launch openid fhirUser user/*.rs patient/*.rs")}`;
  return `${AUTH}/launcher/open?${new URLSearchParams({ launch_url: launchUrl, client_id: clientId, skip_auth: "on", ...choices })}`;
}

test("a consent that unticks a scope: the token has less, and the demo says what it may not read", () =>
  withPage("consent-untick", async (page) => {
    const asked = ["Patient", "Observation", "Condition", "MedicationRequest", "AllergyIntolerance"].map((t) => `patient/${t}.rs`);
    await launchFromDemo(page, MOCK, `openid fhirUser launch/patient ${asked.join(" ")}`);
    await logIn(page, "bernie");
    await page.uncheck('input[name=scope][value="patient/AllergyIntolerance.rs"]');
    await docScreenshot(page, "mock-consent");
    await consent(page, "allow");
    await textOf(page, "#banner-name", "Bernie Kanfeld");
    await textOf(page, "#conditions ul", "Asthma");
    const message = await textOf(page, "#allergies .section-error", "403");
    assert.match(message, /patient\/AllergyIntolerance/);
    const scope = await page.evaluate(() => JSON.parse(sessionStorage.getItem(
      `smart-fhir-client:session:${sessionStorage.getItem("smart-fhir-client:current")}`)).scope);
    assert.ok(!scope.includes("AllergyIntolerance") && scope.includes("patient/Condition.rs"), scope);
  }));

test("a practitioner-only EHR launch: no patient, the practitioner as the user", () =>
  withPage("practitioner-only", async (page) => {
    const clientId = await register();
    await page.goto(launcherLink(clientId, { patient: "", practitioner: "Practitioner/2" }));
    const shown = await result(page);
    assert.equal(shown.patient, null, JSON.stringify(shown));
    assert.equal(shown.fhirUser, `${fhir(MOCK)}/Practitioner/2`);
  }));

test("the launch context of an EHR launch reaches client.state: fhirContext, intent, tenant, encounter", () =>
  withPage("launch-context", async (page) => {
    const clientId = await register();
    await page.goto(launcherLink(clientId, {
      patient: "1", practitioner: "Practitioner/2", encounter: "enc-1",
      fhir_context: "DocumentReference/doc-1-1", intent: "reconcile-medications", tenant: "moir-surgery",
    }));
    const shown = await result(page);
    assert.deepEqual(
      [shown.patient, shown.encounter, shown.fhirContext, shown.intent, shown.tenant],
      ["1", "enc-1", [{ reference: "DocumentReference/doc-1-1" }], "reconcile-medications", "moir-surgery"],
      JSON.stringify(shown),
    );
  }));

test("a signed launch link, opened in a fresh browser, launches an app the mock never registered", () =>
  withPage("launch-link", async (page) => {
    const launchUrl = `${app}/app.html?client_id=an-app-nobody-registered&auto=1&scope=${encodeURIComponent("launch openid fhirUser patient/*.rs")}`;
    const choices = new URLSearchParams({ launch_url: launchUrl, client_id: "", patient: "1", practitioner: "Practitioner/2", intent: "review", skip_auth: "on" });
    const made = await (await fetch(`${AUTH}/launcher/link?${choices}`)).text();
    const link = made.match(/id="launch-link" readonly value="([^"]+)"/)[1];
    assert.ok(link.startsWith(`${AUTH}/launch/`), link);
    await page.goto(link);
    const shown = await result(page);
    assert.deepEqual([shown.patient, shown.intent], ["1", "review"], JSON.stringify(shown));
  }));

test("a launch link given as iss: a standalone launch of an unregistered app, reading through the link", () =>
  withPage("launch-iss", async (page) => {
    const choices = new URLSearchParams({
      launch_url: `${app}/app.html`, client_id: "", patient: "1", practitioner: "Practitioner/2", encounter: "enc-1-2", skip_auth: "on",
    });
    const made = await (await fetch(`${AUTH}/launcher/link?${choices}`)).text();
    const iss = made.match(/id="launch-iss" readonly value="([^"]+)"/)[1];
    assert.ok(iss.startsWith(`${fhir(MOCK)}/launch/`), iss);
    const query = new URLSearchParams({
      client_id: "a-standalone-app-nobody-registered", server: iss, auto: "1",
      scope: "launch/patient launch/encounter openid fhirUser patient/*.rs user/Practitioner.rs",
    });
    await page.goto(`${app}/app.html?${query}`);
    const shown = await result(page);
    assert.deepEqual([shown.patient, shown.encounter], ["1", "enc-1-2"], JSON.stringify(shown));
    const [next, user] = await page.evaluate(async () => {
      const bundle = await window.client.request("Observation?_count=1");
      return [bundle.link.find((l) => l.relation === "next").url, (await window.client.user()).id];
    });
    assert.ok(next.startsWith(`${iss}/Observation?`), next);
    assert.equal(user, "2", "fhirUser is under the link's base, so the client reads it");
  }));

test("a standalone launch with launch/encounter: the consent page picks the encounter", () =>
  withPage("encounter-picker", async (page) => {
    const clientId = await register();
    const query = new URLSearchParams({ client_id: clientId, server: fhir(MOCK), scope: "launch/patient launch/encounter patient/*.rs" });
    await page.goto(`${app}/app.html?${query}`);
    await page.click("#launch");
    await logIn(page, "bernie");
    await page.selectOption("#encounter", "enc-1-2");
    await consent(page, "allow");
    const shown = await result(page);
    assert.deepEqual([shown.patient, shown.encounter], ["1", "enc-1-2"], JSON.stringify(shown));
  }));

test("the clients page: register, edit the redirect URIs, delete; a deleted client's token stops working", () =>
  withPage("clients-page", async (page) => {
    await page.goto(`${AUTH}/clients`);
    await page.fill("#client_name", "Edited later");
    await page.fill("#redirect_uris", `${app}/first.html`);
    await page.click("button[type=submit]");
    const clientId = await page.locator("#registered-client-id").textContent();
    const token = await page.locator("#registered-registration-token").textContent();

    await page.click(`a[href$="/clients/${clientId}"]`);
    await page.fill("#registration_access_token", token);
    await page.fill("#redirect_uris", `${app}/app.html`);
    await page.click("button[value=save]");
    await textOf(page, "body", `${app}/app.html`);
    const read = await fetch(`${AUTH}/register/${clientId}`, { headers: { authorization: `Bearer ${token}` } });
    assert.deepEqual((await read.json()).redirect_uris, [`${app}/app.html`]);

    // A launch with the edited client, then its deletion on the page.
    const query = new URLSearchParams({ client_id: clientId, server: fhir(MOCK), scope: "launch/patient offline_access patient/*.rs" });
    const appPage = await page.context().newPage();
    await appPage.goto(`${app}/app.html?${query}`);
    await appPage.click("#launch");
    await logIn(appPage, "bernie");
    await consent(appPage, "allow");
    assert.equal((await result(appPage)).patient, "1");

    await page.goto(`${AUTH}/clients/${clientId}`);
    await page.fill("#registration_access_token", token);
    await page.click("button[value=delete]");
    await textOf(page, "body", `Deleted ${clientId}`);
    const gone = await fetch(`${AUTH}/register/${clientId}`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(gone.status, 401);
    const after = await appPage.evaluate(() => client.refresh().then(() => "refreshed", (e) => e.code));
    assert.equal(after, "session_expired", "the deleted client's refresh token is refused");
  }));

test("a launch over --tls (the certificate the mock generated, trusted for this test)", () =>
  withPage("tls", async (page) => {
    assert.ok(tlsFhir.startsWith("https://"), tlsFhir);
    const clientId = await register({ skip_login: "bernie", skip_auth: true }, tlsFhir.replace("/ccri-fhir/R4", "/ccri-auth"));
    const query = new URLSearchParams({ client_id: clientId, server: tlsFhir });
    await page.goto(`${app}/app.html?${query}`);
    await page.click("#launch");
    const shown = await result(page);
    assert.equal(shown.patient, "1", JSON.stringify(shown));
  }, { ignoreHTTPSErrors: true }));
