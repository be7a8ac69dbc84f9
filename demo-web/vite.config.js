import { resolve } from "node:path";
import { defineConfig } from "vite";

// Three pages: the launch page, the app (also the redirect URI), and a page that
// launches with SMART's reference client (fhirclient) for comparison.
export default defineConfig({
  resolve: {
    alias: { "isomorphic-webcrypto": resolve(import.meta.dirname, "src/webcrypto.js") },
  },
  build: {
    target: "es2022",
    rollupOptions: {
      input: {
        index: resolve(import.meta.dirname, "index.html"),
        app: resolve(import.meta.dirname, "app.html"),
        fhirclient: resolve(import.meta.dirname, "fhirclient.html"),
      },
    },
  },
});
