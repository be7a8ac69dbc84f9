// The test app: launches as its query says (client_id, server for a standalone launch,
// scope, target, complete_in_target, method, storage; auto launches at once, else on
// the button), and on its redirect URI or a reload shows the session it is on (and
// keeps its client as window.client).
import init, { authorize, ready } from "/pkg/smart_fhir_client.js";

await init();
const params = new URLSearchParams(location.search);
const option = (name) => params.get(name) ?? undefined;
const storage = option("storage");
const out = document.querySelector("#out");
const show = (value) => {
  out.textContent = JSON.stringify(value);
  out.dataset.done = "1";
};

async function launch() {
  try {
    await authorize({
      iss: option("server"),
      clientId: option("client_id"),
      scope: option("scope") ?? "launch launch/patient openid fhirUser patient/*.rs",
      redirectUri: `${location.origin}/app.html${storage ? `?storage=${storage}` : ""}`,
      storage,
      target: option("target"),
      completeInTarget: params.has("complete_in_target"),
      method: option("method"),
    });
  } catch (e) {
    show({ error: e.code, message: e.message });
  }
}
document.querySelector("#launch").addEventListener("click", launch);

if (params.has("client_id")) {
  if (params.has("auto")) await launch();
} else {
  try {
    const client = await ready({ storage });
    window.client = client;
    const { id, encounter, fhirContext, intent, tenant, fhirUser, scope, patient } = client.state;
    // The Patient is read (not only named) when there is one.
    const read = patient ? (await client.patient()).id : null;
    show({ patient: read, session: id, framed: window !== top, encounter, fhirContext, intent, tenant, fhirUser, scope });
  } catch (e) {
    show({ error: e.code, message: e.message });
  }
}
