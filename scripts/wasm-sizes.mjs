// Prints each wasm module's size raw, gzip -9 and brotli -q 11, and fails if a module's gzip
// size is past its budget (the budgets map a module's file name to { gzipBytes }, as
// scripts/wasm-config.py gives them from wasm-pack.toml; a module without a budget fails too,
// so a new build cannot skip it).
//
//   node scripts/wasm-sizes.mjs '{"edgerec_bg.wasm": {"gzipBytes": 2320000}}' pkg/web/edgerec_bg.wasm ...
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { brotliCompressSync, constants, gzipSync } from "node:zlib";

const [budgetJson, ...modules] = process.argv.slice(2);
const budget = JSON.parse(budgetJson);
const budgetFile = "wasm-pack.toml";
const kib = (n) => `${(n / 1024).toFixed(0)} KiB`;
let over = false;
console.log("wasm sizes:");
console.log(`  ${"module".padEnd(28)} ${"raw".padStart(10)} ${"gzip -9".padStart(10)} ${"brotli 11".padStart(10)} ${"gzip budget".padStart(12)}`);
for (const path of modules) {
  const bytes = readFileSync(path);
  const gzip = gzipSync(bytes, { level: 9 }).length;
  const brotli = brotliCompressSync(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length;
  const name = basename(path);
  const limit = budget[name]?.gzipBytes;
  console.log(`  ${name.padEnd(28)} ${kib(bytes.length).padStart(10)} ${kib(gzip).padStart(10)} ${kib(brotli).padStart(10)} ${(limit ? kib(limit) : "none").padStart(12)}`);
  if (!Number.isInteger(limit)) {
    console.error(`${path}: no gzip budget in ${budgetFile}`);
    over = true;
  } else if (gzip > limit) {
    console.error(`${path}: ${gzip} bytes gzipped, past its budget of ${limit} (${budgetFile}): shrink it, or raise the budget in a reviewed change`);
    over = true;
  }
}
if (over) process.exit(1);
