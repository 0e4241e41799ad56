#!/usr/bin/env node
// Run a scenario in the browser build (qossim.wasm) under Node.js, through
// the same ABI the playground uses (src/browser.rs), and write the files it
// returns into OUT_DIR. tests/wasm_parity.rs compares them with the native
// CLI's.
//
//   node scripts/wasm-run.mjs QOSSIM.wasm SCENARIO.toml OUT_DIR [MAX_EVENTS] [--set K=V]...
//
// Exit status: 0 when the run succeeded, 3 when the build refused it (the
// error is printed and written to OUT_DIR/error.txt), 2 on bad arguments.
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";

const args = process.argv.slice(2);
if (args.length < 3) {
  console.error("usage: wasm-run.mjs QOSSIM.wasm SCENARIO.toml OUT_DIR [MAX_EVENTS] [--set K=V]...");
  process.exit(2);
}
const [wasmPath, tomlPath, outDir, ...rest] = args;
let maxEvents = 0n;
const sets = [];
for (let i = 0; i < rest.length; i++) {
  if (rest[i] === "--set") {
    sets.push(rest[++i]);
  } else {
    maxEvents = BigInt(rest[i]);
  }
}

const { instance } = await WebAssembly.instantiate(readFileSync(wasmPath), {});
const x = instance.exports;
const enc = new TextEncoder();
const dec = new TextDecoder();

function put(text) {
  const bytes = enc.encode(text);
  const ptr = x.qossim_alloc(bytes.length);
  new Uint8Array(x.memory.buffer, ptr, bytes.length).set(bytes);
  return [ptr, bytes.length];
}
function take(ptr) {
  const n = new DataView(x.memory.buffer).getUint32(ptr, true);
  const text = dec.decode(new Uint8Array(x.memory.buffer, ptr + 4, n));
  x.qossim_free(ptr, n + 4);
  return JSON.parse(text);
}

const [tp, tl] = put(readFileSync(tomlPath, "utf8"));
const [op, ol] = put(sets.join("\n"));
const lo = Number(maxEvents & 0xffffffffn);
const hi = Number(maxEvents >> 32n);
const result = take(x.qossim_run(tp, tl, op, ol, lo, hi));
x.qossim_free(tp, tl);
x.qossim_free(op, ol);

mkdirSync(outDir, { recursive: true });
if (!result.ok) {
  writeFileSync(join(outDir, "error.txt"), result.error);
  console.error(result.error);
  process.exit(3);
}
for (const [name, text] of Object.entries(result.files)) {
  writeFileSync(join(outDir, name), text);
}
console.log(`${result.events} events, ${Object.keys(result.files).length} files`);
