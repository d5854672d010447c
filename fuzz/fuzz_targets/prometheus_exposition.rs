//! The Prometheus exposition parser (text 0.0.4 and OpenMetrics) on
//! arbitrary bytes: it must never panic, and whatever it accepts must
//! convert to OTLP without panicking either.
#![no_main]

use confluo_receivers::prometheus::convert::{self, Options, SeriesCache, Target};
use confluo_receivers::prometheus::parser::{parse, Format};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let target = Target::new(
        vec![
            ("instance".into(), "h:1".into()),
            ("job".into(), "j".into()),
        ],
        "http".into(),
    );
    let opts = Options {
        honor_labels: false,
        honor_timestamps: true,
        metric_relabel: &[],
        sample_limit: 0,
        label_limit: 0,
        label_name_length_limit: 0,
        label_value_length_limit: 0,
        adjust_start_time: true,
    };
    for format in [Format::Text, Format::OpenMetrics] {
        if let Ok(exp) = parse(text, format) {
            let mut cache = SeriesCache::default();
            let _ = convert::convert(&exp, format, &target, &opts, 1, &mut cache);
            let _ = cache.stale(2, true);
        }
    }
});
