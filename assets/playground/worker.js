// Runs one scenario in the wasm build of qossim, off the page's thread.
// Message in: {wasm (the module's bytes, needed with the first job), toml,
// overrides, maxEvents}; message out: the JSON
// qossim_run returns ({ok, error, events, files}).
"use strict";
let moduleP = null;
let exportsP = null;

// A fresh instance of the module compiled from the first job's bytes.
async function load() {
  const module = await moduleP;
  // The module is meant to import nothing; should it, say which import
  // was called instead of failing to instantiate.
  const imports = {};
  for (const imp of WebAssembly.Module.imports(module)) {
    if (imp.kind !== "function") continue;
    imports[imp.module] = imports[imp.module] || {};
    imports[imp.module][imp.name] = () => {
      throw new Error(`qossim.wasm called the import ${imp.module}.${imp.name}, which the page does not provide`);
    };
  }
  const instance = await WebAssembly.instantiate(module, imports);
  return instance.exports;
}

function put(ex, text) {
  const bytes = new TextEncoder().encode(text);
  const ptr = ex.qossim_alloc(bytes.length);
  new Uint8Array(ex.memory.buffer, ptr, bytes.length).set(bytes);
  return [ptr, bytes.length];
}

// A length-prefixed result buffer: 4 bytes little-endian N, N bytes UTF-8.
function take(ex, ptr) {
  const n = new DataView(ex.memory.buffer).getUint32(ptr, true);
  const text = new TextDecoder().decode(new Uint8Array(ex.memory.buffer, ptr + 4, n));
  ex.qossim_free(ptr, n + 4);
  return text;
}

self.onmessage = async (e) => {
  const job = e.data;
  try {
    if (!moduleP) moduleP = WebAssembly.compile(job.wasm);
    job.wasm = null;
    if (!exportsP) exportsP = load();
    const ex = await exportsP;
    if (job.version) {
      self.postMessage({ version: JSON.parse(take(ex, ex.qossim_version())) });
      return;
    }
    const [tp, tl] = put(ex, job.toml);
    const [op, ol] = put(ex, job.overrides);
    const lo = job.maxEvents % 4294967296;
    const hi = Math.floor(job.maxEvents / 4294967296);
    let res;
    try {
      res = ex.qossim_run(tp, tl, op, ol, lo, hi);
    } finally {
      ex.qossim_free(tp, tl);
      ex.qossim_free(op, ol);
    }
    self.postMessage(JSON.parse(take(ex, res)));
  } catch (err) {
    // A trap leaves the instance unusable: load a fresh one next time.
    exportsP = null;
    self.postMessage({ ok: false, error: `the simulator stopped: ${err && err.message ? err.message : err}`, files: {} });
  }
};
