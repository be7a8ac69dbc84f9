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
