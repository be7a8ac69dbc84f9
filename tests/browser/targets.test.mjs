// Where a launch happens: in an EHR's frame, out of it (_top, _parent), in another
// frame of the EHR, in a popup that hands back to the frame, in a new tab, as a form
// POST, and two sessions in two tabs that share localStorage.
// The test app (pages/app.html) and the EHR page (pages/ehr.html) are served on two
// origins, with the release build of the package.
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { consent, logIn, serve, startBrowser, startMock, tearDown, withPage } from "./harness.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const roots = { "/pkg/": join(here, "..", "..", "client-wasm", "pkg"), "/": join(here, "pages") };
let fhir, auth, app, ehr;

before(async () => {
  [fhir, app, ehr] = await Promise.all([startMock(18084), serve(18097, roots), serve(18098, roots), startBrowser()]);
  auth = fhir.replace("/ccri-fhir/R4", "/ccri-auth");
});
after(tearDown);

/** Registers the test app; `switches` are the mock's skip_login / skip_auth. */
async function register(switches = {}) {
  const response = await fetch(`${auth}/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      client_name: "launch target tests",
      redirect_uris: [`${app}/app.html`, `${app}/app.html?storage=local`],
      token_endpoint_auth_method: "none",
      ...switches,
    }),
  });
  assert.equal(response.status, 201);
  return (await response.json()).client_id;
}

/** An EHR launch link from the mock's launcher, opening the app with `query`. */
function launcherLink(clientId, patient, query) {
  const launchUrl = `${app}/app.html?client_id=${clientId}&auto=1&${query}`;
  const link = new URLSearchParams({ launch_url: launchUrl, client_id: clientId, patient, practitioner: "Practitioner/2", skip_auth: "on" });
  return `${auth}/launcher/open?${link}`;
}

/** What the app in `frame` (a Page or Frame) shows once it is done. */
async function result(frame) {
  await frame.waitForSelector("#out[data-done]");
  return JSON.parse(await frame.locator("#out").textContent());
}

const appFrame = (page) => page.frame({ name: "app" });

test("an EHR frames the app: the EHR launch and the reads happen inside the frame", () =>
  withPage("target-frame", async (page) => {
    const clientId = await register({ skip_login: "dr.harrison", skip_auth: true });
    await page.goto(`${ehr}/ehr.html?src=${encodeURIComponent(launcherLink(clientId, "1", ""))}`);
    const shown = await result(appFrame(page));
    assert.deepEqual([shown.patient, shown.framed], ["1", true], JSON.stringify(shown));
    assert.equal(page.url().startsWith(ehr), true, "the EHR page stayed");
  }));

test("a popup from the frame: login in the popup, which hands the result back and closes", () =>
  withPage("target-popup", async (page) => {
    const clientId = await register();
    const standalone = `${app}/app.html?client_id=${clientId}&server=${encodeURIComponent(fhir)}&target=popup&scope=${encodeURIComponent("launch/patient openid fhirUser patient/*.rs")}`;
    await page.goto(`${ehr}/ehr.html?src=${encodeURIComponent(standalone)}`);
    const frame = appFrame(page);
    await frame.waitForSelector("#launch");
    const [popup] = await Promise.all([page.context().waitForEvent("page"), frame.click("#launch")]);
    await logIn(popup, "bernie");
    await consent(popup, "allow");
    await popup.waitForEvent("close");
    const shown = await result(frame);
    assert.deepEqual([shown.patient, shown.framed], ["1", true], JSON.stringify(shown));
  }));

for (const target of ["_top", "_parent"]) {
  test(`${target} from the EHR's frame: the launch leaves the EHR and completes in the whole window`, () =>
    withPage(`target${target}`, async (page) => {
      const clientId = await register({ skip_login: "bernie", skip_auth: true });
      const standalone = `${app}/app.html?client_id=${clientId}&server=${encodeURIComponent(fhir)}&target=${target}`;
      await page.goto(`${ehr}/ehr.html?src=${encodeURIComponent(standalone)}`);
      const frame = appFrame(page);
      await frame.waitForSelector("#launch");
      await frame.click("#launch");
      const shown = await result(page);
      assert.deepEqual([shown.patient, shown.framed], ["1", false], JSON.stringify(shown));
      assert.ok(page.url().startsWith(`${app}/app.html`), page.url());
    }));
}

test("a named frame of the EHR: the launch happens and completes there, the app's frame stays", () =>
  withPage("target-named-frame", async (page) => {
    const clientId = await register({ skip_login: "bernie", skip_auth: true });
    const standalone = `${app}/app.html?client_id=${clientId}&server=${encodeURIComponent(fhir)}&target=side`;
    // The EHR page on the app's origin: a frame of another origin's page may not be navigated.
    await page.goto(`${app}/ehr.html?side&src=${encodeURIComponent(standalone)}`);
    const frame = appFrame(page);
    await frame.waitForSelector("#launch");
    await frame.click("#launch");
    const shown = await result(page.frame({ name: "side" }));
    assert.deepEqual([shown.patient, shown.framed], ["1", true], JSON.stringify(shown));
    assert.equal(await frame.locator("#out").textContent(), "", "the app's frame did not move");
  }));

test("a named frame of another origin's EHR page: the launch stays in the app's frame, with a warning", () =>
  withPage("target-foreign-frame", async (page) => {
    const clientId = await register({ skip_login: "bernie", skip_auth: true });
    const warnings = [];
    page.on("console", (message) => message.type() === "warning" && warnings.push(message.text()));
    const standalone = `${app}/app.html?client_id=${clientId}&server=${encodeURIComponent(fhir)}&target=side`;
    await page.goto(`${ehr}/ehr.html?side&src=${encodeURIComponent(standalone)}`);
    const frame = appFrame(page);
    await frame.waitForSelector("#launch");
    await frame.click("#launch");
    const shown = await result(appFrame(page));
    assert.deepEqual([shown.patient, shown.framed], ["1", true], JSON.stringify(shown));
    assert.ok(warnings.some((w) => w.includes("may not navigate")), JSON.stringify(warnings));
  }));

test("a blocked popup: the launch continues in the app's own window, with a warning", () =>
  withPage("target-popup-blocked", async (page) => {
    const clientId = await register({ skip_login: "bernie", skip_auth: true });
    const warnings = [];
    page.on("console", (message) => message.type() === "warning" && warnings.push(message.text()));
    await page.goto(`${app}/app.html?client_id=${clientId}&server=${encodeURIComponent(fhir)}&target=popup`);
    await page.evaluate(() => { window.open = () => null; });
    await page.click("#launch");
    const shown = await result(page);
    assert.deepEqual([shown.patient, shown.framed], ["1", false], JSON.stringify(shown));
    assert.ok(warnings.some((w) => w.includes("blocked")), JSON.stringify(warnings));
  }));

test("a new tab that completes the launch itself (_blank)", () =>
  withPage("target-blank", async (page) => {
    const clientId = await register({ skip_login: "bernie", skip_auth: true });
    await page.goto(`${app}/app.html?client_id=${clientId}&server=${encodeURIComponent(fhir)}&target=_blank`);
    const [tab] = await Promise.all([page.context().waitForEvent("page"), page.click("#launch")]);
    const shown = await result(tab);
    assert.equal(shown.patient, "1", JSON.stringify(shown));
    assert.equal(await page.locator("#out").textContent(), "", "the first tab did not move");
  }));

test("method POST: the authorize parameters go as a form (authorize-post)", () =>
  withPage("target-post", async (page) => {
    const clientId = await register({ skip_login: "bernie", skip_auth: true });
    await page.goto(`${app}/app.html?client_id=${clientId}&server=${encodeURIComponent(fhir)}&method=POST`);
    const [request] = await Promise.all([
      page.waitForRequest((r) => r.url().startsWith(`${auth}/authorize`)),
      page.click("#launch"),
    ]);
    assert.equal(request.method(), "POST");
    assert.match(request.postData(), /code_challenge_method=S256/);
    assert.equal(new URL(request.url()).search, "", "no parameter in the URL");
    assert.equal((await result(page)).patient, "1");
  }));

test("two tabs sharing localStorage, two patients: neither overwrites the other, each reload resumes its own", () =>
  withPage("two-tabs", async (first) => {
    const clientId = await register({ skip_login: "dr.harrison", skip_auth: true });
    const second = await first.context().newPage();
    await first.goto(launcherLink(clientId, "1", "storage=local"));
    assert.equal((await result(first)).patient, "1");
    await second.goto(launcherLink(clientId, "3", "storage=local"));
    assert.equal((await result(second)).patient, "3");
    for (const [tab, patient] of [[first, "1"], [second, "3"]]) {
      await tab.goto(`${app}/app.html?storage=local`);
      assert.equal((await result(tab)).patient, patient);
    }
  }));
