// The app: finishes the launch (or resumes the session), then shows the record of
// the patient in context. Every error from the client is shown as a sentence.
import init, { ready } from "smart-fhir-client";
import { concept, date, duration, humanName, nhsNumber, quantity } from "./format.js";
import { showError } from "./settings.js";

const $ = (id) => document.getElementById(id);
const PAGE_SIZE = 10;

await init();
let client;
try {
  client = await ready();
} catch (error) {
  $("status").hidden = true;
  showError($("error"), error);
  throw error;
}
$("status").hidden = true;
const state = client.state;

showSession();
$("refresh").disabled = false;
$("sign-out").disabled = false;
$("refresh").addEventListener("click", async () => {
  try {
    await client.refresh();
    $("refreshed").textContent = `(refreshed at ${new Date().toLocaleTimeString("en-GB")})`;
  } catch (error) {
    showError($("error"), error);
  }
});
$("sign-out").addEventListener("click", async () => {
  try {
    await client.revoke();
  } finally {
    location.assign("/");
  }
});

if (state.patient) {
  await Promise.all([showPatient(), showEncounter(), showObservations(), showConditions(), showMedications(), showAllergies()]);
}

function showSession() {
  $("session").hidden = false;
  const scopes = $("scopes");
  scopes.replaceChildren(...(state.scope ?? "").split(" ").filter(Boolean).map((s) => li(s)));
  const tick = () => {
    const expiresAt = client.state.expiresAt;
    $("expiry").textContent = expiresAt ? duration(Math.round(expiresAt - Date.now() / 1000)) : "never";
  };
  tick();
  setInterval(tick, 1000);
}

/** The patient in context; the banner only when the server says the app must show it
 * (a standalone launch; inside an EHR, the EHR shows its own). */
async function showPatient() {
  await section($("session"), async () => {
    const patient = await client.patient();
    $("context").textContent = `Patient in context: ${humanName(patient)} (Patient/${patient.id})` +
      (state.fhirUser ? ` · signed in as ${state.fhirUser}` : "");
    if (!state.needPatientBanner) return;
    $("banner").hidden = false;
    $("banner-name").textContent = humanName(patient);
    $("banner-nhs").textContent = nhsNumber(patient);
    $("banner-dob").textContent = date(patient.birthDate);
    $("banner-gender").textContent = patient.gender ?? "";
  });
}

async function showEncounter() {
  if (!state.encounter) return;
  await section($("encounter"), async () => {
    const encounter = await client.encounter();
    $("encounter-detail").textContent =
      `Encounter/${encounter.id}: ${concept(encounter.type?.[0])}, ${date(encounter.period?.start)} (${encounter.status})`;
  });
}

async function showObservations() {
  const pages = [];
  const render = (bundle) => {
    const rows = (bundle.entry ?? []).map(({ resource: o }) =>
      tr(date(o.effectiveDateTime ?? o.issued), concept(o.code), quantity(o), concept(o.category?.[0])),
    );
    $("observations").querySelector("tbody").replaceChildren(...rows);
    const first = (pages.length - 1) * PAGE_SIZE + 1;
    $("page-info").textContent = bundle.total ? `${first}–${first + rows.length - 1} of ${bundle.total}` : "none";
    $("previous-page").disabled = pages.length < 2;
    $("next-page").disabled = !bundle.link?.some((l) => l.relation === "next");
  };
  await section($("observations"), async () => {
    pages.push(await client.patient.search("Observation", { _count: PAGE_SIZE, _sort: "-date" }));
    render(pages.at(-1));
  });
  $("next-page").addEventListener("click", () =>
    section($("observations"), async () => {
      const next = await client.nextPage(pages.at(-1));
      if (next) pages.push(next);
      render(pages.at(-1));
    }),
  );
  $("previous-page").addEventListener("click", () => {
    pages.pop();
    render(pages.at(-1));
  });
}

async function showConditions() {
  await list($("conditions"), "Condition", (c) => `${concept(c.code)} (since ${date(c.onsetDateTime)})`);
}

async function showMedications() {
  await list($("medications"), "MedicationRequest", (m) => `${concept(m.medicationCodeableConcept)}: ${m.dosageInstruction?.[0]?.text ?? ""}`);
}

async function showAllergies() {
  await list($("allergies"), "AllergyIntolerance", (a) => concept(a.code));
}

async function list(element, type, describe) {
  await section(element, async () => {
    const bundle = await client.patient.search(type);
    const items = (bundle.entry ?? []).map(({ resource }) => li(describe(resource)));
    element.querySelector("ul").replaceChildren(...(items.length ? items : [li("None recorded")]));
  });
}

/** Shows `element` and runs `load`, putting any error in the section itself. */
async function section(element, load) {
  element.hidden = false;
  const error = element.querySelector(".section-error") ?? $("error");
  error.hidden = true;
  try {
    await load();
  } catch (e) {
    showError(error, e);
  }
}

function li(text) {
  const item = document.createElement("li");
  item.textContent = text;
  return item;
}

function tr(...cells) {
  const row = document.createElement("tr");
  row.append(...cells.map((text) => Object.assign(document.createElement("td"), { textContent: text })));
  return row;
}
