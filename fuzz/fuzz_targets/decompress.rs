//! Body decompression: never panics and never returns more than the limit.
#![no_main]

use confluo_pipeline::compression::decompress;
use libfuzzer_sys::fuzz_target;

const LIMIT: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let encoding = ["gzip", "zstd", "deflate", "identity"][selector as usize % 4];
    if let Ok(out) = decompress(Some(encoding), bytes::Bytes::copy_from_slice(body), LIMIT) {
        assert!(out.len() <= LIMIT);
    }
});
