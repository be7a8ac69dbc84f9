// The TypeScript declarations the npm package ships: the documented API compiles,
// and misuse does not (types/usage.ts uses @ts-expect-error for those lines).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));

test("the package's TypeScript types accept the documented API and reject misuse", () => {
  const tsc = join(here, "node_modules", "typescript", "bin", "tsc");
  const args = [tsc, "--noEmit", "--strict", "--target", "es2022", "--module", "esnext",
    "--moduleResolution", "bundler", "--lib", "esnext,dom,dom.iterable", "types/usage.ts"];
  try {
    execFileSync(process.execPath, args, { cwd: here, encoding: "utf8" });
  } catch (error) {
    assert.fail(`tsc rejected the types:\n${error.stdout}${error.stderr}`);
  }
});
