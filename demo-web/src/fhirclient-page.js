// The same launch with SMART's reference client, fhirclient.js: if it works against
// ccri-mock, the mock speaks SMART as the ecosystem expects.
import FHIR from "fhirclient";
import { CLIENT_ID, server } from "./settings.js";

const status = document.getElementById("fhirclient-status");
const params = new URLSearchParams(location.search);

if (params.has("code") || params.has("error")) {
  try {
    const client = await FHIR.oauth2.ready();
    const patient = await client.patient.read();
    const name = patient.name?.[0];
    document.getElementById("fhirclient-patient").textContent =
      `${[...(name?.given ?? []), name?.family].join(" ")} (Patient/${patient.id})`;
    status.textContent = "fhirclient.js completed the launch and read the patient.";
  } catch (error) {
    status.textContent = `fhirclient.js failed: ${error.message}`;
  }
} else {
  FHIR.oauth2.authorize({
    iss: server(),
    clientId: CLIENT_ID,
    scope: "launch/patient openid fhirUser patient/*.read",
    redirectUri: "fhirclient.html",
  });
}
