// The demo app driven in Chromium: launches against ccri-mock through its real
// pages, the release build of smart-fhir-client, and SMART's reference client.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import {
  DEMO, MOCK, SHORT_MOCK, consent, docScreenshot, fhir, launchFromDemo, logIn, setUp, tearDown, textOf, withPage,
} from "./harness.mjs";

before(setUp);
after(tearDown);

const OTHER_PATIENTS = ["Jones", "Adebayo", "Patel", "O'Connor", "Evans", "Thompson", "Hussain", "Dubois", "Smith"];

async function assertNoOtherPatient(page) {
  const text = await page.locator("body").textContent();
  for (const name of OTHER_PATIENTS) assert.ok(!text.includes(name), `the page shows ${name}, another patient`);
}

test("standalone launch: a GP picks Bernie Kanfeld, the record and its pages load", () =>
  withPage("standalone", async (page) => {
    await launchFromDemo(page, MOCK);
    await docScreenshot(page, "mock-login");
    await logIn(page, "dr.harrison");
    await page.check("#patient-1");
    await page.click("button[type=submit]");
    await consent(page, "allow");
    await page.waitForURL(/\/app\.html/);
    assert.equal(await textOf(page, "#banner-name", "Bernie"), "Bernie Kanfeld");
    assert.equal(await textOf(page, "#banner-nhs", "987"), "987 654 3210");
    await textOf(page, "#banner-dob", "19-Mar-1998");
    await textOf(page, "#page-info", "1–10 of 41");
    assert.equal(await page.locator("#observations tbody tr").count(), 10);
    await page.click("#next-page");
    await textOf(page, "#page-info", "11–20 of 41");
    await textOf(page, "#conditions ul", "Asthma");
    await textOf(page, "#allergies ul", "penicillin");
    assert.ok(!(await page.url()).includes("code="), "the callback URL was cleaned");
    await docScreenshot(page, "demo-app");
    await assertNoOtherPatient(page);
    // The package's launch breaks no rule the mock's inspector knows.
    const records = await (await fetch(`${MOCK}/ccri-auth/inspector/requests`)).json();
    assert.ok(records.some((r) => r.path.startsWith("/ccri-auth/authorize?")), "the launch was recorded");
    const linted = records.filter((r) => r.lints.length > 0).map((r) => `${r.path}: ${r.lints.map((l) => l.id)}`);
    assert.deepEqual(linted, []);
  }));

test("EHR launch from the mock's launcher with a chosen patient and encounter", () =>
  withPage("ehr-launch", async (page) => {
    await page.goto(`${MOCK}/ccri-auth/launcher`);
    await page.fill("#launch_url", `${DEMO}/`);
    await page.selectOption("#patient", "1");
    await page.selectOption("#practitioner", "Practitioner/2");
    await page.selectOption("#encounter", "enc-1");
    await docScreenshot(page, "mock-launcher");
    await page.click("button[type=submit]");
    // The EHR's practitioner is signed in already: straight to consent.
    await consent(page, "allow");
    await page.waitForURL(/\/app\.html/);
    await textOf(page, "#context", "Bernie Kanfeld (Patient/1)");
    await textOf(page, "#encounter-detail", "Encounter/enc-1");
    assert.equal(await page.locator("#banner").isHidden(), true, "inside an EHR the EHR shows the banner");
  }));

test("consent denied: the app says access_denied", () =>
  withPage("denied", async (page) => {
    await launchFromDemo(page, MOCK);
    await logIn(page, "bernie");
    await consent(page, "deny");
    await page.waitForURL(/\/app\.html/);
    await textOf(page, "#error", "access_denied");
  }));

test("refresh: with offline_access the app keeps working after the token expires", () =>
  withPage("refresh", async (page) => {
    await launchFromDemo(page, SHORT_MOCK, "openid fhirUser launch/patient offline_access patient/*.rs");
    await logIn(page, "bernie");
    await consent(page, "allow");
    await textOf(page, "#page-info", "1–10 of 41");
    const firstToken = await page.evaluate(() => sessionStorage.getItem(`smart-fhir-client:session:${sessionStorage.getItem("smart-fhir-client:current")}`));
    await page.waitForTimeout(4500);
    await page.click("#next-page");
    await textOf(page, "#page-info", "11–20 of 41");
    const secondToken = await page.evaluate(() => sessionStorage.getItem(`smart-fhir-client:session:${sessionStorage.getItem("smart-fhir-client:current")}`));
    assert.ok(JSON.parse(firstToken).accessToken, "the session is stored");
    assert.notEqual(JSON.parse(secondToken).accessToken, JSON.parse(firstToken).accessToken, "a refresh happened");
    assert.equal(await page.locator("#error").isHidden(), true);
  }));

test("a scope not granted: observations show a 403 message, and no other patient appears", () =>
  withPage("scope-403", async (page) => {
    await launchFromDemo(page, MOCK, "openid fhirUser launch/patient patient/Patient.rs");
    await logIn(page, "bernie");
    await consent(page, "allow");
    await textOf(page, "#banner-name", "Bernie Kanfeld");
    const message = await textOf(page, "#observations .section-error", "403");
    assert.match(message, /Not permitted/);
    assert.match(message, /patient\/Observation\.s/);
    assert.equal(await page.locator("#observations tbody tr").count(), 0);
    await assertNoOtherPatient(page);
  }));

test("the reference client (fhirclient.js) completes a launch against ccri-mock", () =>
  withPage("fhirclient", async (page) => {
    await page.goto(`${DEMO}/fhirclient.html?server=${encodeURIComponent(fhir(MOCK))}`);
    await logIn(page, "bernie");
    await consent(page, "allow");
    await textOf(page, "#fhirclient-patient", "Bernie Kanfeld (Patient/1)");
  }));
