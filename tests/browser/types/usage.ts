// Compiled (not run) by types.test.mjs: the package's TypeScript declarations must
// accept the documented API and reject misuse.
import init, { authorize, clientCredentials, ready, register, type ErrorCode, type FhirResponse, type SessionState, type SmartError } from "../../../client-wasm/pkg/smart_fhir_client.js";

export async function documentedUse(): Promise<void> {
  await init();
  const url: string | undefined = await authorize({
    iss: "http://127.0.0.1:8080/ccri-fhir/R4",
    clientId: "demo-app",
    scope: "openid fhirUser launch/patient offline_access patient/*.rs",
    redirectUri: "http://127.0.0.1:5173/app.html",
    storage: "session",
    issAllowList: ["http://127.0.0.1:8080/ccri-fhir/R4"],
    noRedirect: true,
    prompt: "login",
    extraParams: { login_hint: "bernie", max_age: 600 },
    clockTolerance: 120,
  });
  await authorize({ clientId: "a", scope: "launch openid", target: "popup", width: 600, height: 700, method: "POST" });
  await authorize({ clientId: "a", scope: "launch", target: window.parent, completeInTarget: true });
  await authorize([
    { issMatch: "https://ehr.example/fhir", clientId: "one", scope: "launch" },
    { issMatch: /\.example\//, clientId: "two", scope: "launch" },
    { issMatch: (iss: string) => iss.startsWith("https://"), clientId: "three", scope: "launch" },
  ]);
  const client = await ready();
  await ready({ url: url ?? "", storage: { getItem: () => null, setItem: () => {}, removeItem: () => {} } });
  const state: SessionState = client.state;
  const expires: number | undefined = state.expiresAt;
  const patientId: string | undefined = client.patientId;
  await client.read("Patient", patientId ?? "1");
  await client.vread("Patient", "1", "1");
  await client.search("Observation", { patient: "1", _count: 50, code: ["a", "b"] });
  await client.search("Patient");
  for await (const page of client.pages("Observation", { patient: "1" })) console.log(page.total);
  await client.create({ resourceType: "Observation" });
  await client.update({ resourceType: "Observation", id: "1" });
  await client.delete("Observation", "1");
  await client.request("Patient/1", { method: "GET" });
  const controller = new AbortController();
  const response: FhirResponse = await client.read("Patient", "1", { signal: controller.signal, includeResponse: true, headers: { Prefer: "return=representation" } });
  console.log(response.status, response.headers.get("ETag"), response.body.id);
  await client.update({ resourceType: "Patient", id: "1", meta: { versionId: "2" } }, { ifMatch: false });
  await client.patch("Patient", "1", [{ op: "replace", path: "/active", value: false }], { ifMatch: "2" });
  await client.request("Patient/1", { method: "PATCH", body: [{ op: "remove", path: "/telecom" }] });
  await client.batch([{ request: { method: "GET", url: "Patient/1" } }]);
  await client.transaction({ resourceType: "Bundle", type: "transaction", entry: [] });
  await client.search("Observation", { _include: "Observation:encounter" }, { graph: true });
  await client.read("Observation", "1", { resolveReferences: ["subject", "encounter.serviceProvider"], graph: false });
  for await (const page of client.pages("Observation", {}, { pageLimit: 3 })) console.log(page.id);
  await client.nextPage({ resourceType: "Bundle" }, { signal: controller.signal });
  await client.patient();
  await client.user();
  await client.encounter();
  await client.refresh();
  await client.revoke();
  await clientCredentials({ tokenUrl: "http://x/token", clientId: "patient-access", clientSecret: "s" });
  await register("http://x/fhir", { redirect_uris: ["http://localhost/cb"] });
  try {
    await client.refresh();
  } catch (e) {
    const error = e as SmartError;
    const code: string = error.code;
    switch (error.code) {
      case "session_expired":
      case "invalid_grant":
      case "http_401":
        break;
    }
    console.log(code, error.oauth?.error, error.status, expires);
  }
}

export async function misuse(): Promise<void> {
  // @ts-expect-error clientId is required
  await authorize({ iss: "x", scope: "openid" });
  // @ts-expect-error storage is "session" | "local" | "memory" | StorageLike
  await authorize({ clientId: "a", scope: "b", storage: "cookies" });
  // @ts-expect-error the package's own codes are a closed list
  const misspelt: ErrorCode = "session_expird";
  console.log(misspelt);
  // @ts-expect-error clockTolerance is a number of seconds
  await authorize({ clientId: "a", scope: "b", clockTolerance: "1m" });
  const client = await ready();
  // @ts-expect-error method is GET or POST
  await authorize({ clientId: "a", scope: "b", method: "PUT" });
  // @ts-expect-error issMatch is a string, RegExp or function
  await authorize([{ clientId: "a", scope: "b", issMatch: 42 }]);
  // @ts-expect-error ifMatch is a versionId or false
  await client.update({ resourceType: "Patient", id: "1" }, { ifMatch: true });
  // @ts-expect-error the methods are FHIR's
  await client.request("Patient/1", { method: "TRACE" });
  // @ts-expect-error a JSON Patch is an array of operations
  await client.patch("Patient", "1", { op: "remove", path: "/telecom" });
  // @ts-expect-error the signal is an AbortSignal
  await client.read("Patient", "1", { signal: "stop" });
  // @ts-expect-error the state is read-only
  client.state = client.state;
}
