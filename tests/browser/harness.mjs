// Starts what the browser tests need — two ccri-mocks (one with 4-second tokens)
// and the built demo app — and Debian's Chromium; stops all of it afterwards,
// also when a test fails or the run is interrupted. node.test.mjs starts a mock only.
import { spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createServer } from "node:http";
import { request as httpsRequest } from "node:https";
import { dirname, extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const MOCK = "http://127.0.0.1:18081";
export const SHORT_MOCK = "http://127.0.0.1:18082";
export const DEMO = "http://127.0.0.1:5173";
export const fhir = (mock) => `${mock}/ccri-fhir/R4`;
const results = join(root, "tests", "browser", "test-results");

const children = [];
process.on("exit", () => children.forEach((child) => child.kill()));
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => process.exit(130));

function start(command, args, cwd) {
  const child = spawn(command, args, { cwd, stdio: ["ignore", "ignore", "inherit"] });
  children.push(child);
  return child;
}

async function waitFor(url) {
  for (let i = 0; i < 200; i++) {
    try {
      if (url.startsWith("https:") ? (await insecureJson(url)).status === 200 : (await fetch(url)).ok) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} did not come up`);
}

/** A request to a mock started with --tls, whose certificate it generated: trusted
 * here without checking, as only these tests do. Resolves to { status, body }. */
export function insecureJson(url, { method = "GET", body } = {}) {
  return new Promise((resolve, reject) => {
    const headers = body ? { "content-type": "application/json" } : {};
    const request = httpsRequest(url, { method, headers, rejectUnauthorized: false }, (response) => {
      let text = "";
      response.on("data", (chunk) => (text += chunk));
      response.on("end", () => resolve({ status: response.statusCode, body: text ? JSON.parse(text) : null }));
    });
    request.on("error", reject);
    request.end(body && JSON.stringify(body));
  });
}

let browser;

/** Starts a ccri-mock on `port` (stopped when the test process exits); resolves to its FHIR base. */
export async function startMock(port, ...args) {
  start(join(root, "target", "debug", "ccri-mock"), ["--port", String(port), ...args], root);
  const scheme = args.includes("--tls") ? "https" : "http";
  const base = fhir(`${scheme}://127.0.0.1:${port}`);
  await waitFor(`${base}/metadata`);
  return base;
}

export async function setUp() {
  start(join(root, "demo-web", "node_modules", ".bin", "vite"), ["preview", "--host", "127.0.0.1", "--port", "5173", "--strictPort"], join(root, "demo-web"));
  await Promise.all([startMock(18081), startMock(18082, "--token-ttl", "4"), waitFor(DEMO), startBrowser()]);
}

export async function startBrowser() {
  browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"],
  });
}

const servers = [];
const TYPES = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm", ".json": "application/json" };

/** Serves files on 127.0.0.1:`port`: `roots` maps a path prefix to a folder. */
export async function serve(port, roots) {
  const server = createServer(async (request, response) => {
    const path = decodeURIComponent(new URL(request.url, "http://x").pathname);
    const [prefix, folder] = Object.entries(roots).find(([p]) => path.startsWith(p)) ?? [];
    const file = folder && normalize(join(folder, path.slice(prefix.length)));
    try {
      if (!file?.startsWith(folder)) throw new Error("outside the folder");
      const body = await readFile(file);
      response.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream" }).end(body);
    } catch {
      response.writeHead(404).end();
    }
  });
  servers.push(server);
  await new Promise((resolve) => server.listen(port, "127.0.0.1", resolve));
  return `http://127.0.0.1:${port}`;
}

export async function tearDown() {
  await browser?.close();
  servers.forEach((server) => server.close());
  children.forEach((child) => child.kill());
}

/** Runs `body` with a fresh page; on failure saves a screenshot named after the test. */
export async function withPage(name, body, contextOptions = {}) {
  const context = await browser.newContext(contextOptions);
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  const errors = [];
  page.on("pageerror", (error) => errors.push(error));
  try {
    await body(page);
  } catch (error) {
    mkdirSync(results, { recursive: true });
    await page.screenshot({ path: join(results, `${name}.png`), fullPage: true }).catch(() => {});
    error.message += `\n  at ${page.url()}\n  page errors: ${errors.map(String).join("; ") || "none"}`;
    throw error;
  } finally {
    await context.close();
  }
}

/** For the docs (`make screenshots`): saved only when SCREENSHOTS names a folder. */
export async function docScreenshot(page, name) {
  if (!process.env.SCREENSHOTS) return;
  mkdirSync(process.env.SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(process.env.SCREENSHOTS, `${name}.png`), fullPage: true });
}

/** Waits until the element's text contains `text`, and returns the text. */
export async function textOf(page, selector, text) {
  await page.waitForFunction(
    ([s, t]) => document.querySelector(s)?.textContent.includes(t),
    [selector, text],
  ).catch(async () => {
    const actual = await page.locator(selector).textContent().catch(() => "(missing)");
    throw new Error(`${selector} never contained ${JSON.stringify(text)}; it says ${JSON.stringify(actual)}`);
  });
  return page.locator(selector).textContent();
}

/** The mock's login page: log in as `username`. */
export async function logIn(page, username) {
  await page.waitForSelector("#username");
  await page.fill("#username", username);
  await page.fill("#password", "password");
  await page.click("button[type=submit]");
}

/** The mock's consent page: Allow or Deny. */
export async function consent(page, decision) {
  await page.click(`button[value=${decision}]`);
}

/** A standalone launch from the demo's launch page against `mock` with `scope`. */
export async function launchFromDemo(page, mock, scope) {
  await page.goto(`${DEMO}/?server=${encodeURIComponent(fhir(mock))}`);
  if (scope) await page.fill("#scope", scope);
  await page.click("#launch");
}
