// fhirclient.js asks for the `isomorphic-webcrypto` package only where the page has
// no `globalThis.crypto`, which every browser the demo supports has. That package's
// browser shim is CommonJS dressed as an ES module, which the bundler warns about at
// length; the demo hands fhirclient the browser's own WebCrypto instead.
export default globalThis.crypto;
