// The few helpers that are plain JavaScript by nature.

// authorize([…]): the first registration whose issMatch matches the launch's iss.
export function pickRegistration(registrations, pageIss) {
  return registrations.find((registration) => {
    const iss = pageIss ?? registration.iss;
    const match = registration.issMatch;
    if (match === undefined) return true;
    if (typeof match === "function") return !!match(iss);
    return match instanceof RegExp ? match.test(iss) : match === iss;
  });
}

// Where the authorize page opens (authorize({ target, width, height, completeInTarget,
// method })). A popup that is to hand its result back is marked in localStorage, which
// it shares with this page, under its state; this page waits for its message.
export function navigate(endpoint, params, post, { target = "_self", width = 500, height = 650, completeInTarget }) {
  const url = `${endpoint}${endpoint.includes("?") ? "&" : "?"}${params}`;
  const state = new URLSearchParams(params).get("state");
  const popup = target === "popup";
  const handBack = popup && !completeInTarget;
  // A Window object cannot be a form's target: it gets the GET.
  post &&= typeof target === "string";
  let name = popup ? "smart-fhir-client" : target;
  if (popup || name === "_blank") {
    const marker = `smart-fhir-client:popup:${state}`;
    if (handBack) localStorage.setItem(marker, location.origin);
    const x = screenX + (outerWidth - width) / 2, y = screenY + (outerHeight - height) / 2;
    const opened = open(post ? "" : url, name, popup ? `popup,width=${width},height=${height},left=${x},top=${y}` : "");
    if (!opened) {
      localStorage.removeItem(marker);
      console.warn(`smart-fhir-client: the ${target} window was blocked, so the launch continues in this one`);
      name = "_self";
    } else if (handBack) {
      addEventListener("message", function handOver(event) {
        const callback = event.data?.["smart-fhir-client:callback"];
        if (event.origin !== location.origin || event.source !== opened || typeof callback !== "string") return;
        if (new URL(callback).searchParams.get("state") !== state) return;
        removeEventListener("message", handOver);
        location.assign(callback);
      });
    }
    if (opened && !post) return;
  }
  if (!post) {
    const windows = { _self: window, _top: top, _parent: parent };
    const chosen = typeof name === "object" ? name : windows[name] ?? namedFrame(name);
    if (!chosen) {
      if (!open(url, name)) location.href = url;
      return;
    }
    try {
      // Only `location.href` may be set across origins (a frame in an EHR's page).
      chosen.location.href = url;
    } catch {
      // The browser forbids it: a frame of another origin's page, or the top window
      // from a frame without a user's click. As with a blocked popup, stay here.
      console.warn(`smart-fhir-client: this window may not navigate the ${target} window, so the launch continues in this one`);
      location.href = url;
    }
    return;
  }
  // authorize-post: a form of the parameters, submitted into the target.
  const form = document.createElement("form");
  Object.assign(form, { method: "post", action: endpoint, target: name });
  for (const [key, value] of new URLSearchParams(params)) {
    form.append(Object.assign(document.createElement("input"), { type: "hidden", name: key, value }));
  }
  document.body.append(form);
  form.submit();
  form.remove();
}

// A frame named `name` of this window, its parent or the top window. Looked up by
// hand: Chromium's window.open(url, name) does not find a frame of a cross-origin
// EHR page and opens a new window named `name` instead, where navigating the frame
// tells the app, with an error, that it may not.
function namedFrame(name) {
  for (const w of [window, parent, top]) {
    try {
      if (w.frames[name]) return w.frames[name];
    } catch {}
  }
  return null;
}

// In a popup that navigate() marked: hands the callback URL to the page that opened it
// (same origin only), and closes. Returns true if it did.
export function handOver(url) {
  const marker = `smart-fhir-client:popup:${new URL(url).searchParams.get("state")}`;
  let origin = null;
  try {
    origin = localStorage.getItem(marker);
    localStorage.removeItem(marker);
  } catch {}
  if (origin !== location.origin || !window.opener || window.opener.closed) return false;
  window.opener.postMessage({ "smart-fhir-client:callback": url }, location.origin);
  close();
  return true;
}

// Async iteration over search pages: `for await (const bundle of client.pages(type, params, options))`.
export async function* pages(client, type, params, options) {
  let page = await client.search(type, params, options);
  for (let count = 1; page; count++) {
    yield page;
    if (count >= (options?.pageLimit ?? Infinity)) return;
    page = await client.nextPage(bundleOf(page, options), options);
  }
}

// The Bundle inside what `respond` made of it.
function bundleOf(answer, options) {
  const body = options?.includeResponse ? answer.body : answer;
  return options?.graph === false && options.resolveReferences ? body.data : body;
}

// The answer as RequestOptions shape it: includeResponse, resolveReferences, graph.
export async function respond(client, status, headers, body, options) {
  const paths = [options.resolveReferences ?? []].flat();
  const graph = options.graph ?? paths.length > 0;
  if (body && (graph || paths.length)) body = await resolve(client, body, paths, graph, options.signal);
  return options.includeResponse ? { status, headers, body } : body;
}

// Plain JavaScript: it rewrites the answer's objects in place, which through
// Reflect calls in Rust would cost several kB of wasm for these few lines.
async function resolve(client, body, paths, graph, signal) {
  const base = client.state.serverUrl + "/";
  const local = (reference) => (reference.startsWith(base) ? reference.slice(base.length) : reference);
  const bundle = body.resourceType === "Bundle";
  const entries = bundle ? body.entry ?? [] : [];
  // reference → the resource, or the promise of its read; _include'd ones first.
  const known = new Map();
  for (const { resource, search } of entries) {
    if (resource && search?.mode === "include") known.set(`${resource.resourceType}/${resource.id}`, resource);
  }
  const resources = bundle
    ? entries.filter((e) => e.resource && !["include", "outcome"].includes(e.search?.mode)).map((e) => e.resource)
    : [body];
  if (!paths.length) {
    // graph alone: every Reference to an _include'd resource becomes that resource.
    const nest = (node) => {
      for (const [name, value] of Object.entries(node)) {
        if (!value || typeof value !== "object") continue;
        const target = typeof value.reference === "string" && known.get(local(value.reference));
        if (target) node[name] = target;
        else nest(value);
      }
    };
    resources.forEach(nest);
    return body;
  }
  const read = (reference) => {
    const key = local(reference);
    if (!known.has(key)) {
      // A reference this token may not read, or one on another server, stays a Reference.
      const unreadable = (e) => {
        if (/^http_4/.test(e.code) || e.code === "unsafe_url") return undefined;
        throw e;
      };
      known.set(key, client.request(key, { signal }).catch(unreadable));
    }
    return known.get(key);
  };
  const references = {};
  // Follows `names` from `node` (inside `resource`, whose contained resources `#id` names).
  const walk = async (resource, node, names) => {
    const [name, ...rest] = names;
    const value = node[name];
    if (!value || typeof value !== "object") return;
    const items = [value].flat();
    await Promise.all(
      items.map(async (item, index) => {
        let target = item;
        if (typeof item.reference === "string" && !item.resourceType) {
          target = item.reference.startsWith("#")
            ? resource.contained?.find((c) => "#" + c.id === item.reference)
            : await read(item.reference);
          if (!target) return;
          if (!rest.length) {
            if (!graph) references[item.reference] = target;
            else if (Array.isArray(value)) value[index] = target;
            else node[name] = target;
          }
        }
        if (rest.length && target && typeof target === "object") {
          await walk(target.resourceType ? target : resource, target, rest);
        }
      }),
    );
  };
  // In order: "encounter.serviceProvider" walks through the Encounter "encounter" read.
  for (const path of paths) await Promise.all(resources.map((r) => walk(r, r, path.split("."))));
  return graph ? body : { data: body, references };
}

// client.patient: the Patient in context when called; its search and request stay in
// that patient's record. `missing` is the no_patient error when there is none.
export function patientApi(client, id, missing) {
  const only = (run) => (...args) => (missing ? Promise.reject(missing) : run(...args));
  const read = only((options) => client.read("Patient", id, options));
  const search = only(async (type, params, options) => {
    const name = await patientParam(client, type);
    return client.search(type, { ...params, [name]: name === "_id" ? id : `Patient/${id}` }, options);
  });
  const request = (path, options) => {
    const [type, query] = path.split("?");
    const params = {};
    for (const [name, value] of new URLSearchParams(query)) (params[name] ??= []).push(value);
    return search(type, params, options);
  };
  return Object.assign(read, { id, read, search, request });
}

// The search parameter of `type` that names the patient, as the server's
// CapabilityStatement lists it (read once per server); "patient" if it lists none.
const capabilities = new Map();
async function patientParam(client, type) {
  if (type === "Patient") return "_id";
  const base = client.state.serverUrl;
  if (!capabilities.has(base)) capabilities.set(base, client.request("metadata").catch(() => null));
  const statement = await capabilities.get(base);
  const resource = statement?.rest?.flatMap((rest) => rest.resource ?? []).find((r) => r.type === type);
  const names = (resource?.searchParam ?? []).map((p) => p.name);
  return ["patient", "subject", "requester", "member", "actor", "beneficiary"].find((n) => names.includes(n)) ?? "patient";
}

// storage: "memory": a Web Storage lookalike that lives as long as the page, one per
// page so that ready() finds what authorize() kept.
const memory = new Map();
export const memoryStorage = {
  getItem: (key) => (memory.has(key) ? memory.get(key) : null),
  setItem: (key, value) => void memory.set(key, String(value)),
  removeItem: (key) => void memory.delete(key),
};

// WebCrypto's parameters for a JWS alg (RFC 7518 §3.3–3.5): [to import the key, to
// sign or verify], or null. Plain JavaScript: built in Rust, these objects cost
// several times the bytes. PS's salt is as long as the hash.
export function jwsAlgorithm(alg) {
  const bits = alg.slice(2);
  const hash = { 256: "SHA-256", 384: "SHA-384", 512: "SHA-512" }[bits];
  if (!hash) return null;
  switch (alg.slice(0, 2)) {
    case "RS":
      return [{ name: "RSASSA-PKCS1-v1_5", hash }, { name: "RSASSA-PKCS1-v1_5", hash }];
    case "PS":
      return [{ name: "RSA-PSS", hash }, { name: "RSA-PSS", saltLength: bits / 8 }];
    case "ES":
      return [{ name: "ECDSA", namedCurve: "P-" + (bits === "512" ? 521 : bits) }, { name: "ECDSA", hash }];
  }
  return null;
}
