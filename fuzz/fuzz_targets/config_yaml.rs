//! Config loading from untrusted YAML: never panics, bounded work.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let env = |name: &str| (name == "SET").then(|| "value".to_string());
    let _ = confluo_config::load_str("fuzz.yaml", text, &env);
});
