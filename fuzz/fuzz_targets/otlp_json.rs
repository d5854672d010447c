//! OTLP/JSON request decoding: never panics; whatever decodes re-encodes and
//! decodes to the same request.
#![no_main]

use confluo_pipeline::otlp_json;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let mut out = Vec::new();
    match selector % 3 {
        0 => {
            if let Ok(req) = otlp_json::decode_traces(body) {
                otlp_json::encode_traces(&req, &mut out);
                let again = otlp_json::decode_traces(&out).expect("re-decode of our own output");
                assert!(again == req || has_nan(&out));
            }
        }
        1 => {
            if let Ok(req) = otlp_json::decode_metrics(body) {
                otlp_json::encode_metrics(&req, &mut out);
                let again = otlp_json::decode_metrics(&out).expect("re-decode of our own output");
                assert!(again == req || has_nan(&out));
            }
        }
        _ => {
            if let Ok(req) = otlp_json::decode_logs(body) {
                otlp_json::encode_logs(&req, &mut out);
                let again = otlp_json::decode_logs(&out).expect("re-decode of our own output");
                assert!(again == req || has_nan(&out));
            }
        }
    }
});

/// NaN never equals itself, so requests holding one compare unequal.
fn has_nan(json: &[u8]) -> bool {
    json.windows(5).any(|w| w == b"\"NaN\"")
}
