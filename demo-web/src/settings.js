// Where the demo finds the mock. `?server=` overrides the default, so the same build
// works against any ccri-mock (the browser tests start their own).
export const DEFAULT_SERVER = "http://127.0.0.1:8080/ccri-fhir/R4";
export const CLIENT_ID = "demo-app";
export const APP_PAGE = new URL("/app.html", location.origin).href;

export function server() {
  return new URLSearchParams(location.search).get("server") ?? DEFAULT_SERVER;
}

/** An EHR may only launch the demo from a server on this machine. */
export function isLocalServer(iss) {
  try {
    return ["127.0.0.1", "localhost"].includes(new URL(iss).hostname);
  } catch {
    return false;
  }
}

/** A client error as a sentence for people. */
export function describe(error) {
  const detail = error?.oauth?.error_description ?? error?.message ?? String(error);
  switch (error?.code) {
    case "access_denied":
      return `Access was denied (access_denied): ${detail}`;
    case "session_expired":
      return "Your session has expired. Launch the app again.";
    case "state_mismatch":
      return "This sign-in link is stale or was not started here. Launch the app again.";
    case "no_session":
      return "You are not signed in. Start from the launch page.";
    case "http_403":
      return `Not permitted by the granted scopes (403): ${detail}`;
    case "discovery_failed":
      return `That server does not look like a SMART on FHIR server: ${detail}`;
    default:
      return `${error?.code ?? "error"}: ${detail}`;
  }
}

export function showError(element, error) {
  element.textContent = describe(error);
  element.hidden = false;
}
