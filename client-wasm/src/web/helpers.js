// The few helpers that are plain JavaScript by nature.

// Async iteration over search pages: `for await (const bundle of client.pages(type, params))`.
export async function* pages(client, type, params) {
  let bundle = await client.search(type, params);
  while (bundle) {
    yield bundle;
    bundle = await client.nextPage(bundle);
  }
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
