// The launch page: a standalone launch chosen by the user, or an EHR launch when
// the EHR (the mock's launcher) opens this page with ?iss=…&launch=….
import init, { authorize } from "smart-fhir-client";
import { APP_PAGE, CLIENT_ID, isLocalServer, server, showError } from "./settings.js";

const error = document.getElementById("error");
const form = document.getElementById("launch-form");
form.iss.value = server();
form.clientId.value = CLIENT_ID;
form.scope.value = "openid fhirUser launch/patient offline_access patient/*.rs";
for (const preset of document.querySelectorAll("[data-scope]")) {
  preset.addEventListener("click", () => (form.scope.value = preset.dataset.scope));
}

await init();
document.getElementById("launch").disabled = false;

const params = new URLSearchParams(location.search);
if (params.has("iss") && params.has("launch")) {
  const iss = params.get("iss");
  document.getElementById("standalone").hidden = true;
  document.getElementById("ehr-launch").hidden = false;
  document.getElementById("ehr-launch-detail").textContent = `Server: ${iss}`;
  try {
    await authorize({
      iss,
      launch: params.get("launch"),
      clientId: CLIENT_ID,
      scope: "launch openid fhirUser patient/*.rs offline_access",
      redirectUri: APP_PAGE,
      // Only servers this demo trusts may launch it.
      issAllowList: isLocalServer(iss) ? [iss] : [],
    });
  } catch (e) {
    showError(error, e);
  }
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  error.hidden = true;
  try {
    await authorize({
      iss: form.iss.value,
      clientId: form.clientId.value,
      scope: form.scope.value,
      redirectUri: APP_PAGE,
    });
  } catch (e) {
    showError(error, e);
  }
});
