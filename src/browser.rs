//! The browser build's entry points (issue 23; docs/tutorial.md "In the
//! browser"): the library compiled to `wasm32-unknown-unknown` without its
//! `native` feature runs a scenario given as text, entirely in memory, and
//! hands back the CSV files `qossim run` would write — byte for byte the
//! same (tests/wasm_parity.rs).
//!
//! The ABI is plain `extern "C"` over the module's linear memory, so the
//! page needs no generated glue (no wasm-bindgen, nothing fetched):
//!
//! * `qossim_alloc(len) -> ptr` and `qossim_free(ptr, len)`: buffers the
//!   caller fills with UTF-8 input and frees afterwards.
//! * `qossim_run(toml_ptr, toml_len, overrides_ptr, overrides_len,
//!   max_events_lo, max_events_hi) -> ptr`: `overrides` holds one `--set`
//!   assignment per line; the limit is a u64 in two halves (0: none). The
//!   result is 4 bytes of little-endian length N and N bytes of JSON
//!   ([`run_json`]); free it with `qossim_free(ptr, N + 4)`.
//! * `qossim_version() -> ptr`: the version as a JSON string, same framing.

use std::path::Path;

/// The event limit the playground runs with: every teaching scenario fits
/// (qos-levels, the largest, needs 575,090), and a run that reaches it
/// takes about 12 s in headless Chromium on a busy 2-core machine (20
/// million took 24 s; docs/tutorial.md "In the browser").
pub const PLAYGROUND_EVENT_LIMIT: u64 = 10_000_000;

/// Run `toml` with the `--set` `overrides` (one per line, blank lines
/// ignored) as `qossim run` does (a `[sweep]` table is ignored: the file as
/// written), in memory, stopping after `event_limit` events. The answer is
/// JSON: `{"ok": true, "error": null, "events": N, "files": {name: text}}`
/// or `{"ok": false, "error": "…", "events": 0, "files": {}}`.
pub fn run_json(toml: &str, overrides: &str, event_limit: Option<u64>) -> String {
    let sets: Vec<String> = overrides
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    let result = crate::scenario::load_str(toml, "scenario.toml", Path::new("."), &sets)
        .map_err(|e| e.to_string())
        .and_then(|sc| crate::run::run_in_memory(&sc, event_limit).map_err(|e| e.to_string()));
    let v = match result {
        Ok(run) => {
            let files: serde_json::Map<String, serde_json::Value> = run
                .files
                .into_iter()
                .map(|(name, bytes)| {
                    let text = String::from_utf8_lossy(&bytes).into_owned();
                    (name, serde_json::Value::String(text))
                })
                .collect();
            serde_json::json!({"ok": true, "error": null, "events": run.events, "files": files})
        }
        Err(e) => serde_json::json!({"ok": false, "error": e, "events": 0, "files": {}}),
    };
    v.to_string()
}

/// The version string the CLI prints, as JSON.
pub fn version_json() -> String {
    serde_json::Value::String(env!("CARGO_PKG_VERSION").to_string()).to_string()
}

/// `text` framed as the ABI returns it: a u32 LE length then the bytes,
/// in one allocation of exactly that size.
#[cfg(any(target_arch = "wasm32", test))]
fn framed(text: &str) -> Box<[u8]> {
    let mut v = Vec::with_capacity(4 + text.len());
    v.extend_from_slice(&(text.len() as u32).to_le_bytes());
    v.extend_from_slice(text.as_bytes());
    v.into_boxed_slice()
}

#[cfg(target_arch = "wasm32")]
pub mod abi {
    use super::framed;

    /// A buffer of `len` bytes for the caller to fill.
    #[no_mangle]
    pub extern "C" fn qossim_alloc(len: u32) -> *mut u8 {
        Box::into_raw(vec![0u8; len as usize].into_boxed_slice()) as *mut u8
    }

    /// Free a buffer from `qossim_alloc` or a result, with its length.
    ///
    /// # Safety
    /// `ptr` and `len` must be one buffer this module handed out, freed once.
    #[no_mangle]
    pub unsafe extern "C" fn qossim_free(ptr: *mut u8, len: u32) {
        if ptr.is_null() {
            return;
        }
        // SAFETY: the caller passes back a boxed slice of exactly `len`
        // bytes that this module allocated and leaked.
        drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, len as usize)) });
    }

    /// Read `len` bytes at `ptr` as UTF-8 (lossy).
    ///
    /// # Safety
    /// `ptr..ptr+len` must be initialised memory of this module.
    unsafe fn text(ptr: *const u8, len: u32) -> String {
        if ptr.is_null() || len == 0 {
            return String::new();
        }
        // SAFETY: see above.
        let b = unsafe { std::slice::from_raw_parts(ptr, len as usize) };
        String::from_utf8_lossy(b).into_owned()
    }

    fn leak(b: Box<[u8]>) -> *const u8 {
        Box::into_raw(b) as *const u8
    }

    /// Run a scenario; see the module documentation.
    ///
    /// # Safety
    /// Both inputs must be buffers of this module of the given lengths.
    #[no_mangle]
    pub unsafe extern "C" fn qossim_run(
        toml_ptr: *const u8,
        toml_len: u32,
        overrides_ptr: *const u8,
        overrides_len: u32,
        max_events_lo: u32,
        max_events_hi: u32,
    ) -> *const u8 {
        // SAFETY: the caller's buffers, as documented.
        let (toml, over) =
            unsafe { (text(toml_ptr, toml_len), text(overrides_ptr, overrides_len)) };
        let limit = (u64::from(max_events_hi) << 32) | u64::from(max_events_lo);
        let json = super::run_json(&toml, &over, (limit > 0).then_some(limit));
        leak(framed(&json))
    }

    /// The version; see the module documentation.
    #[no_mangle]
    pub extern "C" fn qossim_version() -> *const u8 {
        leak(framed(&super::version_json()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_is_length_then_text() {
        let b = framed("{\"a\":1}");
        assert_eq!(&b[..4], &7u32.to_le_bytes());
        assert_eq!(&b[4..], b"{\"a\":1}");
    }

    #[test]
    fn errors_come_back_as_json_not_panics() {
        let v: serde_json::Value =
            serde_json::from_str(&run_json("name = 3", "", None)).expect("json");
        assert_eq!(v["ok"], false);
        assert!(v["error"]
            .as_str()
            .is_some_and(|e| e.contains("scenario.toml")));
        let v: serde_json::Value =
            serde_json::from_str(&run_json("", "not an assignment", None)).expect("json");
        assert_eq!(v["ok"], false);
    }
}
