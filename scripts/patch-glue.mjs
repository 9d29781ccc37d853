// Makes wasm-bindgen's generated glue throw the package's errors. The one check the glue makes
// itself — that an argument typed as an exported class (`recommendRow`'s state) is an instance
// of it — throws a plain `Error` without a `code`; every other error from the package is an
// `EdgerecError` with one. This rewrites that check (wasm-bindgen is pinned, so its text is
// known) to throw `invalid_argument` for a wrong object, and also for a freed one, which the
// glue would otherwise hand to Rust as a null pointer. Fails if the text is not found exactly
// once, so a wasm-bindgen upgrade cannot skip it silently.
//
// It also makes the node and web glue load the build the engine can run (SIMD or baseline),
// and points the node and bundler entries at the one copy of each module, in the web directory
// (`SHARED`: its path relative to the node and bundler directories, e.g. ../web; the bundler's
// edgerec_bg.js moves there too, since the module imports it by a path relative to itself).
//
//   node scripts/patch-glue.mjs SHARED pkg/node/edgerec.js pkg/web/edgerec.js \
//     pkg/bundler/edgerec_bg.js pkg/bundler/edgerec.js
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
// (an app hosting the .wasm itself passes the file of that name).
const webGenerated = "module_or_path = new URL('edgerec_bg.wasm', import.meta.url);";
const webFlavour = "module_or_path = new URL(wasmFlavour === 'simd' ? 'edgerec_bg.wasm' : 'edgerec_baseline_bg.wasm', import.meta.url);";
const webExport = `
/** The build init() loads by default on this engine: "simd", or "baseline" without WebAssembly SIMD. */
export const wasmFlavour = WebAssembly.validate(new Uint8Array(${SIMD_PROBE})) ? "simd" : "baseline";
`;
const flavourType = `
/** The wasm build for this engine: "simd", or "baseline" where WebAssembly SIMD is missing. */
export const wasmFlavour: "simd" | "baseline";
`;

// bundler: the module and its glue from the shared directory.
const bundlerWasm = 'import * as wasm from "./edgerec_bg.wasm";';
const bundlerGlue = 'from "./edgerec_bg.js";';

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
    text = replaceOnce(file, text, bundlerWasm, `import * as wasm from "${shared}/edgerec_bg.wasm";`, "module import");
    const found = text.split(bundlerGlue).length - 1;
    if (found !== 2) {
      console.error(`${file}: wasm-bindgen's imports of edgerec_bg.js found ${found} times (expected twice): update scripts/patch-glue.mjs`);
      process.exit(1);
    }
    writeFileSync(file, text.replaceAll(bundlerGlue, `from "${shared}/edgerec_bg.js";`));
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
