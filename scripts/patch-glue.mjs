// Makes wasm-bindgen's generated glue throw the package's errors. The one check the glue makes
// itself — that an argument typed as an exported class (`recommendRow`'s state) is an instance
// of it — throws a plain `Error` without a `code`; every other error from the package is an
// `EdgerecError` with one. This rewrites that check (wasm-bindgen is pinned, so its text is
// known) to throw `invalid_argument` for a wrong object, and also for a freed one, which the
// glue would otherwise hand to Rust as a null pointer. Fails if the text is not found exactly
// once, so a wasm-bindgen upgrade cannot skip it silently.
//
//   node scripts/patch-glue.mjs pkg/node/edgerec.js pkg/web/edgerec.js pkg/bundler/edgerec_bg.js
import { readFileSync, writeFileSync } from "node:fs";

const generated = `function _assertClass(instance, klass) {
    if (!(instance instanceof klass)) {
        throw new Error(\`expected instance of \${klass.name}\`);
    }
}`;

const coded = `function _assertClass(instance, klass) {
    const problem = !(instance instanceof klass)
        ? \`expected a \${klass.name}, got \${instance === null ? "null" : typeof instance === "object" ? \`an instance of \${instance?.constructor?.name ?? "Object"}\` : typeof instance}\`
        : instance.__wbg_ptr === 0 ? \`this \${klass.name} was freed\` : null;
    if (problem !== null) {
        const err = new Error(\`invalid argument: \${problem}\`);
        err.name = "EdgerecError";
        err.code = "invalid_argument";
        throw err;
    }
}`;

for (const file of process.argv.slice(2)) {
  const text = readFileSync(file, "utf8");
  const found = text.split(generated).length - 1;
  if (found !== 1) {
    console.error(`${file}: wasm-bindgen's _assertClass found ${found} times (expected once): update scripts/patch-glue.mjs`);
    process.exit(1);
  }
  writeFileSync(file, text.replace(generated, coded));
}
