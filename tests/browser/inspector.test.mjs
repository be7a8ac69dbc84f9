// The inspector while an app runs: a deliberately sloppy page (pages/sloppy.html)
// makes its mistakes, and the inspector page, open beside it, shows each with its
// lint as it happens, without a reload. (demo.test.mjs checks that the demo app's
// launch raises none.)
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { docScreenshot, serve, startBrowser, startMock, tearDown, withPage } from "./harness.mjs";

const here = dirname(fileURLToPath(import.meta.url));
let fhir, pages;

before(async () => {
  [fhir, pages] = await Promise.all([startMock(18085), serve(18097, { "/": join(here, "pages") }), startBrowser()]);
});
after(tearDown);

test("the inspector shows a sloppy app's mistakes live, each with its lint", () =>
  withPage("inspector-live", async (inspector) => {
    const mock = new URL(fhir).origin;
    await inspector.goto(`${mock}/ccri-auth/inspector`);
    await inspector.waitForSelector("#live:not([hidden])");
    const app = await inspector.context().newPage();
    await app.goto(`${pages}/sloppy.html?mock=${encodeURIComponent(mock)}`);
    // No reload: the rows arrive over the live stream.
    for (const lint of ["token-in-query", "authorize-without-pkce", "authorize-without-aud", "unknown-scope"]) {
      await inspector.waitForSelector(`#requests .lint.${lint}`);
    }
    const text = await inspector.locator("#requests").textContent();
    assert.ok(text.includes("closest: patient/Observation.read"), text);
    assert.ok(!text.includes("not-a-real-token"), "the token in the URL is shown only as a fingerprint");
    await app.close();
    await inspector.reload();
    await inspector.waitForSelector("#launches");
    await docScreenshot(inspector, "inspector");
  }));
