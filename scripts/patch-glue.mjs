// Makes wasm-bindgen's generated glue throw the package's errors. The one check the glue makes
// itself — that an argument typed as an exported class (`recommendRow`'s state) is an instance
// of it — throws a plain `Error` without a `code`; every other error from the package is an
// `EdgerecError` with one. This rewrites that check (wasm-bindgen is pinned, so its text is
// known) to throw `invalid_argument` for a wrong object, and also for a freed one, which the
// glue would otherwise hand to Rust as a null pointer. Fails if the text is not found exactly
// once, so a wasm-bindgen upgrade cannot skip it silently.
//
// It also makes the node and web glue load the build the engine can run (SIMD or baseline),
// points the node glue at the one copy of each module, in the web directory (`SHARED`: its path
// relative to the node and bundler directories, e.g. ../web), and replaces wasm-bindgen's
// bundler entry (an ESM-integration `import * as wasm from "./edgerec_bg.wasm"` with a glue of
// its own) by the web glue, initialised: `import init from "SHARED/edgerec.js"; await init();`
// and the same exports. Its types re-export the web glue's.
//
//   node scripts/patch-glue.mjs SHARED pkg/node/edgerec.js pkg/web/edgerec.js pkg/bundler/edgerec.js
//
// (build-wasm.sh then removes wasm-bindgen's bundler glue, pkg/bundler/edgerec_bg.js, and the
// bundler module's edgerec_bg.wasm.d.ts: nothing imports them.)
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";

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

// The wasm each engine can run: the SIMD build where WebAssembly SIMD validates (the probe is a
// function using i8x16.splat and i8x16.popcnt), else the baseline build beside it. The two
// builds have the same exports and imports, so one glue drives either.
const SIMD_PROBE = "[0,97,115,109,1,0,0,0,1,5,1,96,0,1,123,3,2,1,0,10,10,1,8,0,65,0,253,15,253,98,11]";

// node: EDGEREC_WASM=simd|baseline forces one (tests run the parity fixture on both).
const nodeGenerated = "const wasmPath = `${__dirname}/edgerec_bg.wasm`;";
const nodeFlavour = `/** The build this process loaded: "simd", or "baseline" on an engine without SIMD (or EDGEREC_WASM=baseline). */
const wasmFlavour = (() => {
    const forced = typeof process === "object" ? process.env.EDGEREC_WASM : undefined;
    if (forced === "simd" || forced === "baseline") return forced;
    if (forced) throw new Error(\`EDGEREC_WASM must be simd or baseline, got \${forced}\`);
    return WebAssembly.validate(new Uint8Array(${SIMD_PROBE})) ? "simd" : "baseline";
})();
exports.wasmFlavour = wasmFlavour;
const wasmPath = \`\${__dirname}/SHARED/\${wasmFlavour === "simd" ? "edgerec_bg.wasm" : "edgerec_baseline_bg.wasm"}\`;`;

// web: init() without an argument fetches the build the engine can run; wasmFlavour says which
// (an app hosting the .wasm itself passes the file of that name). One literal
// `new URL('…', import.meta.url)` per file: the form bundlers recognise as an asset reference
// (Vite, in its dependency pre-bundling too, and webpack 5 emit each file and rewrite its URL);
// a URL computed from an expression would be left for the browser to resolve against the
// bundled script, where the file is not.
const webGenerated = "module_or_path = new URL('edgerec_bg.wasm', import.meta.url);";
const webFlavour =
  "module_or_path = wasmFlavour === 'simd' ? new URL('edgerec_bg.wasm', import.meta.url) : new URL('edgerec_baseline_bg.wasm', import.meta.url);";
const webExport = `
/** The build init() loads by default on this engine: "simd", or "baseline" without WebAssembly SIMD. */
export const wasmFlavour = WebAssembly.validate(new Uint8Array(${SIMD_PROBE})) ? "simd" : "baseline";
`;
const flavourType = `
/** The wasm build for this engine: "simd", or "baseline" where WebAssembly SIMD is missing. */
export const wasmFlavour: "simd" | "baseline";
`;

// bundler: wasm-bindgen's entry re-exports its glue's classes and functions in one statement;
// the package's entry re-exports the same names (and wasmFlavour) from the initialised web glue.
// No bundler has to support WebAssembly ESM integration, nor keep a .wasm import and the glue it
// calls back into as one instance (Vite's dev-server pre-bundling copied the glue, and the module
// called an uninitialised copy); the bundler emits the two .wasm files the web glue names, and
// the engine fetches the one it can run (tests/js/bundlers.test.mjs: Vite and webpack).
const bundlerExports = /^export \{([^}]*)\} from "\.\/edgerec_bg\.js";$/m;
const bundlerEntry = (shared, names) => `/* @ts-self-types="./edgerec.d.ts" */
// The package's browser and bundler entry ("edgerec"): the web glue, initialised. init() fetches
// the build this engine can run (SIMD or baseline, see wasmFlavour) from the URL the bundler gave
// the file (\`new URL('…', import.meta.url)\` in the glue). edgerec/web is the module it
// initialises: one wasm instance, the same classes.
import init from "${shared}/edgerec.js";

await init();

export { ${names.join(", ")} } from "${shared}/edgerec.js";
`;
const bundlerTypes = (shared, values, types) => `/* tslint:disable */
/* eslint-disable */
// The package's browser and bundler entry: the web glue's classes, functions and types (the
// entry re-exports that module, initialised; pkg/web/edgerec.d.ts documents them).
export { ${values.join(", ")} } from "${shared}/edgerec.js";
export type { ${types.join(", ")} } from "${shared}/edgerec.js";
`;

/** The names a .d.ts declares at its top level: values (classes, functions, consts) and types. */
function declared(dts) {
  const values = [...dts.matchAll(/^export (?:declare )?(?:class|function|const|let) (\w+)/gm)].map((m) => m[1]);
  const types = [...dts.matchAll(/^export (?:declare )?(?:type|interface) (\w+)/gm)].map((m) => m[1]);
  return { values, types };
}

function replaceOnce(file, text, from, to, what) {
  const found = text.split(from).length - 1;
  if (found !== 1) {
    console.error(`${file}: wasm-bindgen's ${what} found ${found} times (expected once): update scripts/patch-glue.mjs`);
    process.exit(1);
  }
  return text.replace(from, () => to);
}

const [shared, ...files] = process.argv.slice(2);
if (!shared || /["'`$\\]/.test(shared)) {
  console.error("usage: node scripts/patch-glue.mjs SHARED FILE...");
  process.exit(1);
}
for (const file of files) {
  let text = readFileSync(file, "utf8");
  if (file.endsWith("bundler/edgerec.js")) {
    const found = text.match(new RegExp(bundlerExports.source, "gm")) ?? [];
    if (found.length !== 1) {
      console.error(`${file}: wasm-bindgen's re-export from edgerec_bg.js found ${found.length} times (expected once): update scripts/patch-glue.mjs`);
      process.exit(1);
    }
    const names = text.match(bundlerExports)[1].split(",").map((n) => n.trim()).filter(Boolean);
    // The web glue (patched first, or already) must export each name, and wasmFlavour.
    const webDir = join(dirname(file), shared);
    const web = declared(readFileSync(join(webDir, "edgerec.d.ts"), "utf8"));
    const ours = declared(readFileSync(file.replace(/\.js$/, ".d.ts"), "utf8"));
    const values = [...names, "wasmFlavour"];
    const missing = [...values, ...ours.types].filter((n) => !web.values.includes(n) && !web.types.includes(n));
    const untyped = names.filter((n) => !ours.values.includes(n));
    if (names.length === 0 || missing.length > 0 || untyped.length > 0) {
      console.error(`${file}: the bundler entry's exports [${names}] do not match the web glue's (missing there: [${missing}], undeclared here: [${untyped}]): patch pkg/web first, or update scripts/patch-glue.mjs`);
      process.exit(1);
    }
    writeFileSync(file, bundlerEntry(shared, values));
    writeFileSync(file.replace(/\.js$/, ".d.ts"), bundlerTypes(shared, values, ours.types));
    continue;
  }
  text = replaceOnce(file, text, generated, coded, "_assertClass");
  if (file.endsWith("node/edgerec.js")) {
    text = replaceOnce(file, text, nodeGenerated, nodeFlavour.replace("SHARED", shared), "wasm path");
    writeFileSync(file.replace(/\.js$/, ".d.ts"), readFileSync(file.replace(/\.js$/, ".d.ts"), "utf8") + flavourType);
  } else if (file.endsWith("web/edgerec.js")) {
    text = replaceOnce(file, text, webGenerated, webFlavour, "default wasm URL") + webExport;
    writeFileSync(file.replace(/\.js$/, ".d.ts"), readFileSync(file.replace(/\.js$/, ".d.ts"), "utf8") + flavourType);
  }
  writeFileSync(file, text);
}
