// Async iteration over search pages: `for await (const bundle of client.pages(type, params))`.
export async function* pages(client, type, params) {
  let bundle = await client.search(type, params);
  while (bundle) {
    yield bundle;
    bundle = await client.nextPage(bundle);
  }
}
