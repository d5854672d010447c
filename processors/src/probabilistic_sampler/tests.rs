//! Tests of the `probabilistic_sampler` processor. Where a test carries
//! vectors from elsewhere, the source is named next to them.

use super::sampling::*;
use super::tracestate::*;
use super::*;
use confluo_config::ComponentKind;
use confluo_pipeline::proto::logs::{ResourceLogs, ScopeLogs};
use confluo_pipeline::proto::trace::{ResourceSpans, ScopeSpans};
use confluo_pipeline::Acks;
use proptest::prelude::*;
use std::sync::Mutex;

// ------------------------------------------------------------ helpers

#[derive(Default)]
struct Sink {
    got: Mutex<Vec<Signal>>,
}

#[async_trait]
impl Consumer for Sink {
    async fn consume(&self, mut batch: Batch) -> Result<(), ConsumeError> {
        self.got.lock().unwrap().push(batch.take_signal());
        batch.acks.take().settle(Settlement::Delivered);
        Ok(())
    }
}

fn cfg(mode: Option<SamplerMode>, pct: f32) -> ProbabilisticSamplerConfig {
    ProbabilisticSamplerConfig {
        mode,
        sampling_percentage: pct,
        ..Default::default()
    }
}

fn sampler_with(config: &ProbabilisticSamplerConfig, signal: SignalKind) -> ProbabilisticSampler {
    let ctx = ComponentContext::for_tests(ComponentKind::Processor, "probabilistic_sampler");
    ProbabilisticSampler::new(&ctx, config, signal, Arc::new(Sink::default())).unwrap()
}

fn tid(hex: &str) -> Vec<u8> {
    let b = attrs::parse_hex_id(hex, 16).unwrap_or_else(|| vec![0; 16]);
    assert_eq!(b.len(), 16);
    b
}

fn span(trace_id: Vec<u8>, trace_state: &str) -> Span {
    Span {
        trace_id,
        span_id: vec![0, 0, 0, 0, 0xfe, 0xfe, 0xfe, 0xfe],
        trace_state: trace_state.to_string(),
        name: "span".into(),
        ..Default::default()
    }
}

fn traces(spans: Vec<Span>) -> Signal {
    Signal::Traces(vec![ResourceSpans {
        scope_spans: vec![ScopeSpans {
            spans,
            ..Default::default()
        }],
        ..Default::default()
    }])
}

fn log(trace_id: Vec<u8>, attributes: Vec<KeyValue>) -> LogRecord {
    LogRecord {
        trace_id,
        attributes,
        ..Default::default()
    }
}

fn logs(records: Vec<LogRecord>) -> Signal {
    Signal::Logs(vec![ResourceLogs {
        scope_logs: vec![ScopeLogs {
            log_records: records,
            ..Default::default()
        }],
        ..Default::default()
    }])
}

fn out_spans(s: &Signal) -> Vec<Span> {
    match s {
        Signal::Traces(rs) => rs
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|ss| ss.spans.clone())
            .collect(),
        _ => panic!("not traces"),
    }
}

fn out_logs(s: &Signal) -> Vec<LogRecord> {
    match s {
        Signal::Logs(rl) => rl
            .iter()
            .flat_map(|r| &r.scope_logs)
            .flat_map(|sl| sl.log_records.clone())
            .collect(),
        _ => panic!("not logs"),
    }
}

/// One span through the sampler: `Some(tracestate)` when kept.
fn sample_one(p: &ProbabilisticSampler, s: Span) -> Option<String> {
    let mut sig = traces(vec![s]);
    p.sample(&mut sig);
    out_spans(&sig).first().map(|s| s.trace_state.clone())
}

/// splitmix64: a small deterministic generator for reproducible tests.
struct SplitMix(u64);
impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn trace_id(&mut self) -> Vec<u8> {
        let mut v = self.next().to_be_bytes().to_vec();
        v.extend_from_slice(&self.next().to_be_bytes());
        v
    }
}

const ALL_MODES: [SamplerMode; 3] = [
    SamplerMode::HashSeed,
    SamplerMode::Proportional,
    SamplerMode::Equalizing,
];

// ------------------------------------------------------------ hashing

#[test]
fn fnv1a32_standard_vectors() {
    // The FNV reference vectors (isthe.com/chongo/tech/comp/fnv).
    assert_eq!(fnv1a32(0x811c_9dc5, b""), 0x811c_9dc5);
    assert_eq!(fnv1a32(0x811c_9dc5, b"a"), 0xe40c_292c);
    assert_eq!(fnv1a32(0x811c_9dc5, b"foobar"), 0xbf9c_f968);
}

#[test]
fn seeded_hash_writes_the_seed_little_endian() {
    // Computed by hand (an independent Python FNV-1a over
    // seed.to_bytes(4, "little") + trace id bytes).
    let id = tid("0102030405060708090a0b0c0d0e0f10");
    assert_eq!(hash(&id, 0), 0xdf24_1a25);
    assert_eq!(hash(&id, 22), 0xd863_b443);
    assert_eq!(hash(&id, 0xdead_beef), 0x6bcb_41ab);
    let id2 = tid("4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(hash(&id2, 1), 0x5077_e6b8);
    // Big-endian seed bytes would give 0x18ef6853 / 0x207e914e instead.
    assert_ne!(hash(&id, 22), 0x18ef_6853);
    assert_eq!(
        hash(&id, 22),
        fnv1a32(fnv1a32(0x811c_9dc5, &[22, 0, 0, 0]), &id)
    );
}

#[test]
fn randomness_from_hash_vectors() {
    // Same independent Python implementation of the Collector's
    // randomnessFromBytes.
    let id = tid("0102030405060708090a0b0c0d0e0f10");
    assert_eq!(Randomness::from_hash(&id, 0).rvalue(), "976837c4f25a25");
    assert_eq!(Randomness::from_hash(&id, 22).rvalue(), "2ef03615863443");
    let id2 = tid("4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(Randomness::from_hash(&id2, 0).rvalue(), "fdc80d0b42008d");
    assert_eq!(Randomness::from_hash(&id2, 22).rvalue(), "3e50158161306b");
}

/// The Collector's own golden decisions (contrib
/// processor/probabilisticsamplerprocessor/tracesprocessor_test.go,
/// `TestHashingFunction`: 100 (seed, trace id) pairs at 50%, generated from
/// the legacy implementation). They pin the byte order: 100/100 match with
/// a little-endian seed, 55/100 with big-endian.
const COLLECTOR_50PCT: &[(u32, &str, bool)] = &[
    (653, "474a03c76d75951a4b4c537ced8f1122", true),
    (563, "53a518291e91307e43cd8467bb06f986", true),
    (142, "a56a02f843b9bc6ee0b13889249e90e6", true),
    (904, "4e40762d3ee97a1c0932e4fa584f89a8", false),
    (445, "5224507db93db513f0ea2a4b4e0578c8", true),
    (38, "0c8717ced36216037af657e9d7f8b35b", true),
    (561, "2a8aa76c18d08e1e8be935541f9318c7", false),
    (757, "9e3d0f9481dc422cb613ea550897ae71", false),
    (22, "66a66c516ac22054673e5da5e6492545", false),
    (172, "84a1ce7bcea3e66194e72b4aa2694e31", true),
    (552, "a811a7def34ca4b98d8e320afd115fad", false),
    (546, "e3a345cc8dbb6f014bfa1edad3981820", true),
    (315, "a71effb50e28d27cbdc9892f3765b8c2", false),
    (510, "55ee665a3fa22f8ea1b744ce15a7339d", false),
    (230, "7a5006be4d0ce7b542d59f83cd6f1c41", false),
    (544, "825b8fb9cfd45867794f4cd8a5a699bd", false),
    (790, "7629ecbea89398bfd9752a2f51c2c137", true),
    (555, "de6cdfb44d69e211f886c57120d7bda0", true),
    (147, "a8a5c3bb9205883fae17ead6675b2450", false),
    (238, "937e6cb3332dbe87062fa3997f48f425", false),
    (122, "5a357e150995e005847816c431ba502d", false),
    (963, "20cb3dcebe2cf8abe6102f4a2e548245", false),
    (141, "1b0afbd09abaaf7996cd26f8f6533795", false),
    (666, "3ee60b013303bcfda06be89071b90bd1", true),
    (305, "c90c7cf3471bbc3a804a8a831633705b", true),
    (270, "18dda74dfca45a7b0261510f385fb4de", true),
    (381, "600cf70c7bb4918e54aefd78c84f3996", true),
    (35, "855f493c5b5b1e2fcbc9993f8061eac8", false),
    (839, "89bc498feb21d969cf0eabf916aa621a", false),
    (561, "0a0af00f63e098a39883705a423b0aa8", true),
    (667, "0c38553d71f54dfc37155c22cc8bf243", false),
    (603, "49493809d1a49ea879e6aba37afde958", true),
    (92, "eb60d98b8f8fe22d8970f44f0e2b6bad", true),
    (70, "19c386ee7a9f2d56ff9ab2e6374540af", false),
    (567, "2a033c15405f1c7a311f653719ed47b7", false),
    (936, "62dda24e4be24f5198e4d8dd4010c811", true),
    (210, "bb134e26ee92e282e29cabdb1d00d333", true),
    (835, "6c77db08bbded7bdd5c99c6e2fea41d2", false),
    (864, "99f6a7e7b50845b4fb64b7c2ee49f53c", true),
    (775, "e908cb91224bee8fd4b5f3632f65717f", true),
    (687, "45a5ace7234d92d9983b4f3858bc0b8e", false),
    (761, "8c8a25d232fd4d3a37a5f70ccb82d752", false),
    (400, "54156d7434a894ef07f2a80dbf0f1138", true),
    (741, "67e3bfb02b0526dbb79420468d7b83dd", false),
    (871, "f6ea221283dcb42f89bfb15fa33398d2", false),
    (244, "b663ca45004decf8123a19fb5d7f7115", true),
    (885, "d0e299d54d6dc6469276fd4e48301d73", true),
    (607, "03240c2748aa67a185909a9345d84aba", false),
    (434, "b00de72ba67e6fe0ed661decac911f7e", true),
    (889, "20fff68a7cc715b30e4e6d69d53e0f60", false),
    (810, "6bf2bb105e594f6220803da5253551af", false),
    (494, "54fbb1d3ebe3883b0a01bbf2c9a2bf3e", true),
    (413, "a8a2ecba129d8537e360cf54de9d7460", false),
    (215, "2df034262b775136f2a313fdcc09738a", true),
    (557, "e3c1b943d9c1199d1108a69aa32a4587", false),
    (662, "1975d5f5640bac1064d53c2c21e02aae", false),
    (482, "6e4f16727dec3c09539b5f50d35d2c13", false),
    (223, "63a088446ef0ed60a9cace4698ede026", false),
    (261, "9b662cd6f67a4e3d1f904b4c5d4275b1", true),
    (112, "a2db788dbadc402b8c466b93b8749a6c", true),
    (6, "d6a68b47c66d1f94eed46b8ddc72faf4", false),
    (575, "e8a83c42f4515568d0942ec4472c9d2c", true),
    (568, "030e14c2954e3f08134b355f33414ba9", false),
    (965, "022315846d42a38322d6fd26250444b3", true),
    (512, "b3ba1ed226288dede87ac1f2ba88de2b", true),
    (108, "c57d0dcf43d5b154ef04c7953c94cd12", true),
    (248, "a835fe521d9cbfcfb724b603f87c7403", false),
    (46, "eda867e6df95e74abefac336c7f4cd1a", false),
    (879, "09e9e67a261ea3e00d817105b57ffd4e", false),
    (853, "6a780cf250cb3d2b699394042e6723a8", false),
    (639, "4c99d7f14c66b3123caf57980f8e2a31", false),
    (111, "79dc8d7a54bc3e8ef513b9cd8d830564", true),
    (135, "9c2e5d9d713e5219b0f9e5b884835e69", false),
    (209, "3ccb300bf7b983229979e0c46db267b0", true),
    (629, "0bb7b9da64da250c3934bb39130dc990", true),
    (910, "b25713ca4cea377871eaa334bc2dd382", true),
    (667, "69afc041003851cec60f41db97e005a9", true),
    (449, "c844b5428abe0cf82eaf02566781870a", true),
    (16, "2533c732bed8c1ba4721c25a1205f06c", false),
    (936, "ecc770b4be885dfc8d6fa135bc2c93bb", true),
    (595, "63b67cbb42de52e9916241ad94fcd5e8", true),
    (83, "fc4998bc53ccd42a5b8e7c86a93d4c88", false),
    (878, "59f0677dffe1a0a8c5895cb263e3a019", false),
    (206, "eb897eff9e7c7363e063b340a0c6b315", true),
    (710, "89e4c7e6af305be6cd139abcae953db5", true),
    (650, "97563d45ee254231e1ace05fb746bcce", false),
    (233, "3f580864f295ff13f179c3c907032ea9", true),
    (836, "e9b78e03706265a6936bff2a41530104", false),
    (568, "c458603ee921fa8711085c15b871b245", false),
    (816, "4bbfffab5b5975c1b007ebc518bf416d", false),
    (397, "61a1a65746287d78a431c6848ed1ffb3", false),
    (847, "53eee02f4672a72e93369b2c2ecf36eb", false),
    (354, "6ea23c3068a2c304488c8e67a072db97", false),
    (961, "eed247645e510ded87bd9afcf1d3e237", false),
    (799, "092af4ff2fdea5bb1c708b2169bdfd95", false),
    (99, "497f02db51c898ac441aae18a8b7ced9", false),
    (773, "988481445600bb91bbe23e3103034bcd", true),
    (928, "f1813835ac0f456721ef3aac39c0269a", true),
    (235, "1999920085682c007eb3a6984d2a7f05", true),
    (460, "60c3b9a2dde734d71ba5cca7eb164bce", true),
];

#[test]
fn hash_seed_matches_the_collectors_golden_decisions() {
    for (seed, id, expect) in COLLECTOR_50PCT {
        assert_eq!(
            legacy_keep(&tid(id), *seed, 50.0),
            *expect,
            "legacy formula, seed {seed} id {id}"
        );
        let mut c = cfg(Some(SamplerMode::HashSeed), 50.0);
        c.hash_seed = *seed;
        let p = sampler_with(&c, SignalKind::Traces);
        let kept = sample_one(&p, span(tid(id), "")).is_some();
        assert_eq!(kept, *expect, "processor, seed {seed} id {id}");
    }
}

#[test]
fn hash_threshold_form_equals_the_legacy_formula() {
    let mut rng = SplitMix(7);
    for pct in [
        0.1f32,
        1.0,
        10.0,
        25.0,
        30.0,
        100.0 / 3.0,
        50.0,
        99.99,
        100.0,
    ] {
        let p = sampler_with(&cfg(Some(SamplerMode::HashSeed), pct), SignalKind::Traces);
        for _ in 0..2000 {
            let id = rng.trace_id();
            let seed = (rng.next() % 1000) as u32;
            let mut c = cfg(Some(SamplerMode::HashSeed), pct);
            c.hash_seed = seed;
            let threshold = match Mode::build(&c) {
                Mode::Hash { threshold, .. } => threshold,
                m => panic!("{m:?}"),
            };
            assert_eq!(
                threshold.should_sample(Randomness::from_hash(&id, seed)),
                legacy_keep(&id, seed, pct),
                "pct {pct}"
            );
        }
        drop(p);
    }
}

#[test]
fn hash_seed_writes_the_collectors_thresholds() {
    // Collector: tracesprocessor_test.go `Test_tracesamplerprocessor_HashSeedTraceState`
    // (75 → "4", 10 → "e668", 100/3 → "aaac": 14-bit rounding), plus 30%
    // computed by hand: uint32(30 × 163.84f32) = 4915, (0x4000-4915)<<42.
    for (pct, tv) in [
        (100.0f32, "0"),
        (75.0, "4"),
        (50.0, "8"),
        (25.0, "c"),
        (10.0, "e668"),
        (100.0 / 3.0, "aaac"),
        (30.0, "b334"),
        (1.0, "fd74"),
    ] {
        let p = sampler_with(&cfg(Some(SamplerMode::HashSeed), pct), SignalKind::Traces);
        let mut rng = SplitMix(pct.to_bits() as u64);
        let mut found = 0;
        for _ in 0..10_000 {
            let Some(ts) = sample_one(&p, span(rng.trace_id(), "")) else {
                continue;
            };
            let parsed = TraceState::parse(&ts).unwrap();
            assert_eq!(parsed.ot.th.as_ref().unwrap().1, tv, "pct {pct}: {ts}");
            let rv = parsed.ot.randomness().expect("hash_seed writes rv");
            assert!(parsed.ot.threshold().unwrap().should_sample(rv));
            found += 1;
            if found == 10 {
                break;
            }
        }
        assert_eq!(found, 10, "pct {pct}");
    }
    assert_eq!(scaled_sampling_rate(30.0), 4915);
    assert_eq!(scaled_sampling_rate(100.0), 16384);
    assert_eq!(scaled_sampling_rate(250.0), 16384);
}

// ------------------------------------------------------------ thresholds

/// The specification's table (opentelemetry-specification
/// specification/trace/tracestate-probability-sampling.md, "Converting
/// floating-point probability to threshold value"): 1-in-N at precision 3, 4, 5.
#[test]
fn spec_threshold_table_reproduces_exactly() {
    let table: &[(f64, [&str; 3])] = &[
        (1.0, ["0", "0", "0"]),
        (0.5, ["8", "8", "8"]),
        (1.0 / 3.0, ["aab", "aaab", "aaaab"]),
        (0.25, ["c", "c", "c"]),
        (0.2, ["ccd", "cccd", "ccccd"]),
        (0.125, ["e", "e", "e"]),
        (0.1, ["e66", "e666", "e6666"]),
        (0.0625, ["f", "f", "f"]),
        (0.01, ["fd71", "fd70a", "fd70a4"]),
        (0.001, ["ffbe7", "ffbe77", "ffbe76d"]),
        (0.0001, ["fff972", "fff9724", "fff97247"]),
        (0.00001, ["ffff584", "ffff583a", "ffff583a5"]),
        (0.000001, ["ffffef4", "ffffef39", "ffffef391"]),
    ];
    for (p, expect) in table {
        for (i, prec) in [3usize, 4, 5].into_iter().enumerate() {
            let th = Threshold::from_probability(*p, prec).unwrap();
            assert_eq!(th.tvalue(), expect[i], "p {p} precision {prec}");
        }
    }
    // The spec's worked example: 1% at 5 digits is 0xfd70a400000000.
    assert_eq!(
        Threshold::from_probability(0.01, 5).unwrap().unsigned(),
        0xfd70a400000000
    );
}

#[test]
fn collector_pkg_sampling_precision_examples() {
    // contrib pkg/sampling/probability_test.go.
    assert_eq!(
        Threshold::from_probability(1.0 / 3.0, 3).unwrap().tvalue(),
        "aab"
    );
    assert_eq!(
        Threshold::from_probability(2.0 / 3.0, 3).unwrap().tvalue(),
        "555"
    );
    assert_eq!(
        Threshold::from_probability(1.0 / 3.0, 0).unwrap().tvalue(),
        "aaaaaaaaaaaaac"
    );
    let rounded = [
        (1.0 - 0x456789a as f64 / (1u64 << 28) as f64, 6, "45678a"),
        (1.0 - 0x456789a as f64 / (1u64 << 28) as f64, 1, "4"),
        (1.0 - 0x456789a as f64 / (1u64 << 40) as f64, 4, "0004568"),
        (
            1.0 - 0x789abcdef_u64 as f64 / (1u64 << 40) as f64,
            6,
            "0789abd",
        ),
        (1.0 - 0x12345678 as f64 / (1u64 << 32) as f64, 7, "1234568"),
        (1.0 - 0x80801 as f64 / (1u64 << 28) as f64, 3, "00808"),
    ];
    for (p, prec, tv) in rounded {
        assert_eq!(
            Threshold::from_probability(p, prec).unwrap().tvalue(),
            tv,
            "{tv}"
        );
    }
    for (p, tv) in [
        (MIN_SAMPLING_PROBABILITY, "ffffffffffffff"),
        (2.0 * MIN_SAMPLING_PROBABILITY, "fffffffffffffe"),
        (8.0 * MIN_SAMPLING_PROBABILITY, "fffffffffffff8"),
        (16.0 * MIN_SAMPLING_PROBABILITY, "fffffffffffff"),
    ] {
        assert_eq!(Threshold::from_probability(p, 3).unwrap().tvalue(), tv);
    }
    assert!(Threshold::from_probability(0.0, 4).is_err());
    assert!(Threshold::from_probability(1.5, 4).is_err());
}

#[test]
fn tvalue_and_rvalue_encoding() {
    assert_eq!(Threshold::ALWAYS.tvalue(), "0");
    assert_eq!(Threshold::NEVER.tvalue(), "");
    assert_eq!(
        Threshold::parse_tvalue("8").unwrap().unsigned(),
        0x80000000000000
    );
    assert_eq!(
        Threshold::parse_tvalue("80000000000000").unwrap().tvalue(),
        "8"
    );
    assert_eq!(Threshold::parse_tvalue("FD70A").unwrap().tvalue(), "fd70a");
    assert_eq!(Threshold::parse_tvalue(""), Err(ValueError::TValueSize));
    assert_eq!(
        Threshold::parse_tvalue("abababababababab"),
        Err(ValueError::TValueSize)
    );
    assert_eq!(Threshold::parse_tvalue("-1"), Err(ValueError::NotHex));
    assert_eq!(Threshold::parse_tvalue("+1"), Err(ValueError::NotHex));
    assert_eq!(
        Randomness::parse_rvalue("0000000000000f")
            .unwrap()
            .unsigned(),
        15
    );
    assert_eq!(
        Randomness::from_unsigned(15).unwrap().rvalue(),
        "0000000000000f"
    );
    assert_eq!(
        Randomness::parse_rvalue("abababababababab"),
        Err(ValueError::RValueSize)
    );
    assert_eq!(
        Randomness::from_trace_id(&tid("fefefefefefefefefe80000000000000")),
        Randomness::from_unsigned(0x80000000000000)
    );
    // probability() inverts the conversion.
    assert_eq!(Threshold::parse_tvalue("c").unwrap().probability(), 0.25);
}

proptest! {
    #[test]
    fn threshold_round_trips(u in 0u64..(1u64 << 56)) {
        let t = Threshold::from_unsigned(u).unwrap();
        let text = t.tvalue();
        prop_assert!(!text.is_empty() && text.len() <= 14);
        prop_assert_eq!(Threshold::parse_tvalue(&text).unwrap(), t);
    }

    #[test]
    fn randomness_round_trips(u in 0u64..(1u64 << 56)) {
        let r = Randomness::from_unsigned(u).unwrap();
        prop_assert_eq!(Randomness::parse_rvalue(&r.rvalue()).unwrap(), r);
    }

    #[test]
    fn probability_threshold_is_close(p in 1e-9f64..=1.0, prec in 1usize..=14) {
        let t = Threshold::from_probability(p, prec).unwrap();
        // Relative error bounded by one unit in the last requested digit.
        let err = (t.probability() - p).abs();
        prop_assert!(err <= p * 16f64.powi(-(prec as i32) + 1) + 1e-15, "p {} prec {} got {}", p, prec, t.probability());
    }
}

// ------------------------------------------------------------ tracestate

#[test]
fn tracestate_preserves_other_vendors_and_ot_subkeys() {
    let ts = TraceState::parse(
        " congo=t61rcWkgMzE ,ot=th:8;xy:zz;rv:9b8233f7e3a151, rojo=00f067aa0ba902b7,,",
    )
    .unwrap();
    assert_eq!(ts.ot.threshold(), Threshold::parse_tvalue("8").ok());
    assert_eq!(ts.ot.extra, vec![("xy", "zz")]);
    assert_eq!(
        ts.others,
        vec![("congo", "t61rcWkgMzE"), ("rojo", "00f067aa0ba902b7")]
    );
    // ot first, rv then th then other ot keys; vendors in order.
    assert_eq!(
        ts.encode(),
        "ot=rv:9b8233f7e3a151;th:8;xy:zz,congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"
    );
    let mut ts = TraceState::parse("vendor@tenant=1").unwrap();
    assert!(!ts.ot.has_any());
    assert!(ts
        .ot
        .update_threshold(Threshold::parse_tvalue("c").unwrap()));
    assert_eq!(ts.encode(), "ot=th:c,vendor@tenant=1");
    // Never lowers an existing threshold.
    assert!(!ts
        .ot
        .update_threshold(Threshold::parse_tvalue("8").unwrap()));
    assert_eq!(ts.encode(), "ot=th:c,vendor@tenant=1");
    assert_eq!(TraceState::parse("").unwrap().encode(), "");
}

#[test]
fn tracestate_errors() {
    for bad in [
        "ot=th:abababababababab",
        "ot=rv:abababababababab",
        "ot=th:-1",
        "ot=th:8;",
        "ot=:8",
        "ot=Th:8",
        "ot=th:8;;rv:00000000000000",
        "ot=th:8;rv:zzzzzzzzzzzzzz",
        "Upper=1",
        "novalue",
        "k=",
        "k=a\u{7f}",
        "1abc=x",
    ] {
        assert!(TraceState::parse(bad).is_err(), "{bad:?} should fail");
    }
    let many: Vec<String> = (0..33).map(|i| format!("k{i}=v")).collect();
    assert_eq!(
        TraceState::parse(&many.join(",")),
        Err(TraceStateError::Size)
    );
    assert!(TraceState::parse(&many[..32].join(",")).is_ok());
    let long = format!("k={}", "v".repeat(1100));
    assert_eq!(TraceState::parse(&long), Err(TraceStateError::Size));
}

proptest! {
    #[test]
    fn tracestate_parser_never_panics(s in "\\PC{0,300}") {
        let _ = TraceState::parse(&s);
    }

    #[test]
    fn tracestate_parser_handles_near_valid_input(
        s in "(ot=(th|rv|[a-z]{1,3}):[0-9a-fA-F._-]{0,16}(;[a-z]{1,3}:[a-z0-9]{0,5}){0,3}|[a-z][a-z0-9_*/-]{0,5}(@[a-z]{1,4})?=[ -~]{0,10}[!-~])( {0,2}, {0,2}(ot=th:[0-9a-f]{1,3}|[a-z]{1,4}=[a-z0-9]{1,4})){0,4}"
    ) {
        if let Ok(ts) = TraceState::parse(&s) {
            // Output is canonical: parsing it again gives the same encoding.
            let once = ts.encode();
            let again = TraceState::parse(&once).expect("re-parse of own output");
            prop_assert_eq!(again.encode(), once);
        }
    }
}

// ------------------------------------------------------------ consistent modes

/// The Collector's table for the consistent modes (contrib
/// tracesprocessor_test.go `Test_tracesamplerprocessor_TraceState`):
/// (name, pct, precision, trace id, incoming tracestate, priority,
///  expected for equalizing, expected for proportional), `None` = dropped.
/// Those configs have fail_closed false (Go's zero value).
#[test]
fn collector_consistent_mode_table() {
    struct Case {
        name: &'static str,
        pct: f32,
        prec: i64,
        tid: &'static str,
        ts: &'static str,
        priority: Option<i64>,
        eq: Option<&'static str>,
        prop: Option<&'static str>,
    }
    const DEFAULT_TID: &str = "fefefefefefefefefe80000000000000";
    const IMPROBABLE: &str = "111111111111111111ffffffffffffff";
    let c = |name, pct, prec, tid, ts, eq, prop| Case {
        name,
        pct,
        prec,
        tid,
        ts,
        priority: None,
        eq,
        prop,
    };
    let cases = [
        c(
            "100 percent",
            100.0,
            0,
            DEFAULT_TID,
            "",
            Some("ot=th:0"),
            Some("ot=th:0"),
        ),
        c(
            "50 percent sampled",
            50.0,
            0,
            DEFAULT_TID,
            "",
            Some("ot=th:8"),
            Some("ot=th:8"),
        ),
        c(
            "25 percent sampled",
            25.0,
            0,
            "ddddddddddddddddddc0000000000000",
            "",
            Some("ot=th:c"),
            Some("ot=th:c"),
        ),
        c(
            "25 percent unsampled",
            25.0,
            0,
            "ddddddddddddddddddb0000000000000",
            "",
            None,
            None,
        ),
        c(
            "1 percent sampled",
            1.0,
            0,
            DEFAULT_TID,
            "ot=rv:FD70A3D70A3D71",
            Some("ot=rv:FD70A3D70A3D71;th:fd70a3d70a3d71"),
            Some("ot=rv:FD70A3D70A3D71;th:fd70a3d70a3d71"),
        ),
        c(
            "1 percent rvalue precision 4",
            1.0,
            4,
            DEFAULT_TID,
            "ot=rv:FD70A3D70A3D71",
            Some("ot=rv:FD70A3D70A3D71;th:fd70a"),
            Some("ot=rv:FD70A3D70A3D71;th:fd70a"),
        ),
        c(
            "1 percent rvalue precision 3",
            1.0,
            3,
            DEFAULT_TID,
            "ot=rv:FD70A3D70A3D71",
            None,
            None,
        ),
        c(
            "1 percent not sampled with rvalue",
            1.0,
            0,
            DEFAULT_TID,
            "ot=rv:FD70A3D70A3D70",
            None,
            None,
        ),
        c(
            "49 percent not sampled",
            49.0,
            0,
            DEFAULT_TID,
            "",
            None,
            None,
        ),
        c(
            "1 percent sampled with rvalue",
            1.0,
            0,
            DEFAULT_TID,
            "ot=rv:fd70B000000000",
            Some("ot=rv:fd70B000000000;th:fd70a3d70a3d71"),
            Some("ot=rv:fd70B000000000;th:fd70a3d70a3d71"),
        ),
        c(
            "1 percent sampled with tid",
            1.0,
            4,
            "a0a0a0a0a0a0a0a0a0fe000000000000",
            "",
            Some("ot=th:fd70a"),
            Some("ot=th:fd70a"),
        ),
        c(
            "incoming 50 percent with rvalue",
            50.0,
            0,
            DEFAULT_TID,
            "ot=rv:90000000000000;th:80000000000000",
            Some("ot=rv:90000000000000;th:8"),
            None,
        ),
        c(
            "incoming 50 at 25 not sampled",
            25.0,
            0,
            DEFAULT_TID,
            "ot=th:8",
            None,
            None,
        ),
        c(
            "incoming 50 at 25 sampled",
            25.0,
            0,
            "ffffffffffffffffffffffffffffffff",
            "ot=th:8",
            Some("ot=th:c"),
            Some("ot=th:e"),
        ),
        c(
            "equalizing vs proportional",
            50.0,
            0,
            DEFAULT_TID,
            "ot=rv:c0000000000000;th:8",
            Some("ot=rv:c0000000000000;th:8"),
            Some("ot=rv:c0000000000000;th:c"),
        ),
        c(
            "inconsistent arriving threshold",
            100.0,
            0,
            DEFAULT_TID,
            "ot=rv:40000000000000;th:8",
            Some("ot=rv:40000000000000;th:0"),
            Some("ot=rv:40000000000000;th:0"),
        ),
        c(
            "40 percent precision 3 with rvalue",
            40.0,
            3,
            DEFAULT_TID,
            "ot=rv:a0000000000000",
            Some("ot=rv:a0000000000000;th:99a"),
            Some("ot=rv:a0000000000000;th:99a"),
        ),
        c(
            "arriving 50 at 40 precision 6",
            40.0,
            6,
            "a0a0a0a0a0a0a0a0a0d0000000000000",
            "ot=th:8",
            Some("ot=th:99999a"),
            Some("ot=th:cccccd"),
        ),
        c(
            "arriving 50 at 40 partly sampled",
            40.0,
            3,
            "a0a0a0a0a0a0a0a0a0b0000000000000",
            "ot=th:8",
            Some("ot=th:99a"),
            None,
        ),
        c(
            "arriving 50 at 40 not sampled",
            40.0,
            3,
            "a0a0a0a0a0a0a0a0a080000000000000",
            "ot=th:8",
            None,
            None,
        ),
        c(
            "200 percent equals 100 percent",
            200.0,
            0,
            DEFAULT_TID,
            "",
            Some("ot=th:0"),
            Some("ot=th:0"),
        ),
        c(
            "tiny probability rounding",
            100.0 * (1.0 / 16384.0),
            0,
            IMPROBABLE,
            "ot=th:fffc",
            Some("ot=th:fffc"),
            Some("ot=th:fffffff"),
        ),
        c(
            "almost 100pct sampling",
            ((1.0 - 8e-7) * 100.0) as f32,
            10,
            IMPROBABLE,
            "",
            Some("ot=th:00000cccccccd"),
            Some("ot=th:00000cccccccd"),
        ),
        c(
            "probability underflow",
            1.0 / 16.0,
            0,
            IMPROBABLE,
            "ot=th:fffffffffffff8",
            Some("ot=th:fffffffffffff8"),
            None,
        ),
        Case {
            priority: Some(2),
            ..c(
                "sampled by priority",
                1.0,
                0,
                DEFAULT_TID,
                "",
                Some("ot=th:0"),
                Some("ot=th:0"),
            )
        },
        Case {
            priority: Some(0),
            ..c(
                "not sampled by priority",
                99.0,
                0,
                DEFAULT_TID,
                "",
                None,
                None,
            )
        },
    ];
    for case in &cases {
        for mode in [SamplerMode::Equalizing, SamplerMode::Proportional] {
            let mut config = cfg(Some(mode), case.pct);
            config.fail_closed = false;
            config.hash_seed = 4321;
            // precision 0 (full) is what the Go test sets directly; our
            // config validation wants 1..=14, and 14 is the same thing.
            config.sampling_precision = if case.prec == 0 { 14 } else { case.prec };
            let p = sampler_with(&config, SignalKind::Traces);
            let mut s = span(tid(case.tid), case.ts);
            if let Some(v) = case.priority {
                s.attributes
                    .push(attrs::key_value(SPAN_PRIORITY_ATTRIBUTE, attrs::int(v)));
            }
            let expect = if mode == SamplerMode::Equalizing {
                case.eq
            } else {
                case.prop
            };
            assert_eq!(
                sample_one(&p, s).as_deref(),
                expect,
                "{} ({mode:?})",
                case.name
            );
        }
    }
}

/// contrib tracesprocessor_test.go `Test_tracesamplerprocessor_TraceStateErrors`:
/// with fail_closed these spans are dropped, each with its reason counted.
#[test]
fn fail_closed_drops_items_with_bad_sampling_information() {
    let cases = [
        ("00000000000000000000000000000000", "", "missing_randomness"),
        (
            "fefefefefefefefefe80000000000000",
            "ot=rv:abababababababab",
            "invalid_tracestate",
        ),
        (
            "fefefefefefefefefe80000000000000",
            "ot=th:abababababababab",
            "invalid_tracestate",
        ),
        (
            "fefefefefefefefefe80000000000000",
            "ot=th:-1",
            "invalid_tracestate",
        ),
        (
            "ffffffffffffffffff70000000000000",
            "ot=th:8",
            "inconsistent_threshold",
        ),
        (
            "fefefefefefefefefe80000000000000",
            "ot=th:8;rv:70000000000000",
            "inconsistent_threshold",
        ),
    ];
    for (id, ts, reason) in cases {
        for mode in [SamplerMode::Equalizing, SamplerMode::Proportional] {
            let p = sampler_with(&cfg(Some(mode), 100.0), SignalKind::Traces);
            let mut sig = traces(vec![span(tid(id), ts)]);
            let tally = p.sample(&mut sig);
            assert!(out_spans(&sig).is_empty(), "{ts} {mode:?}");
            let i = REASON_LABELS.iter().position(|r| *r == reason).unwrap();
            assert_eq!(tally.errors[i], 1, "{ts} {mode:?}");

            // Failing open keeps them; an inconsistent threshold is erased
            // and replaced by this stage's.
            let mut open = cfg(Some(mode), 100.0);
            open.fail_closed = false;
            let p = sampler_with(&open, SignalKind::Traces);
            let kept = sample_one(&p, span(tid(id), ts));
            assert!(kept.is_some(), "{ts} {mode:?} fail open");
        }
    }
    // hash_seed on data that already carries OTel sampling information.
    let p = sampler_with(&cfg(Some(SamplerMode::HashSeed), 100.0), SignalKind::Traces);
    let mut sig = traces(vec![
        span(tid("fefefefefefefefefe80000000000000"), "ot=th:8"),
        span(
            tid("fefefefefefefefefe80000000000000"),
            "ot=rv:80000000000000",
        ),
    ]);
    let tally = p.sample(&mut sig);
    assert!(out_spans(&sig).is_empty());
    assert_eq!(tally.errors[4], 1);
    assert_eq!(tally.errors[5], 1);
}

#[test]
fn tracestate_writes_keep_other_entries() {
    let p = sampler_with(
        &cfg(Some(SamplerMode::Proportional), 50.0),
        SignalKind::Traces,
    );
    let out = sample_one(
        &p,
        span(
            tid("ffffffffffffffffffffffffffffffff"),
            "congo=t61rcWkgMzE,ot=th:0;pp:1, rojo=00f067aa0ba902b7",
        ),
    );
    assert_eq!(
        out.as_deref(),
        Some("ot=th:8;pp:1,congo=t61rcWkgMzE,rojo=00f067aa0ba902b7")
    );
}

// ------------------------------------------------------------ statistics

/// Over 100,000 random trace ids the kept fraction is within 5σ of the
/// binomial expectation, for each mode and percentage.
#[test]
fn kept_fraction_within_binomial_bounds() {
    const N: usize = 100_000;
    for mode in ALL_MODES {
        for pct in [10.0f32, 25.0, 50.0] {
            let mut c = cfg(Some(mode), pct);
            c.hash_seed = 12345;
            let p = sampler_with(&c, SignalKind::Traces);
            let mut rng = SplitMix(0x5eed ^ u64::from(pct.to_bits()));
            let spans: Vec<Span> = (0..N).map(|_| span(rng.trace_id(), "")).collect();
            let mut sig = traces(spans);
            let tally = p.sample(&mut sig);
            let kept = out_spans(&sig).len();
            assert_eq!(kept as u64, tally.kept);
            // The effective probability is the threshold's, not exactly pct.
            let prob = Mode::build(&c).decide(None).probability();
            let mean = N as f64 * prob;
            let sigma = (N as f64 * prob * (1.0 - prob)).sqrt();
            assert!(
                (kept as f64 - mean).abs() <= 5.0 * sigma,
                "{mode:?} {pct}%: kept {kept}, expected {mean:.0} ± {:.0}",
                5.0 * sigma
            );
        }
    }
}

// ------------------------------------------------------------ logs

/// The same trace id is decided the same way in a traces and a logs
/// pipeline, in every mode (a log is kept exactly when its trace is).
#[test]
fn logs_follow_their_traces() {
    for mode in ALL_MODES {
        for pct in [1.0f32, 30.0, 77.7] {
            let mut c = cfg(Some(mode), pct);
            c.hash_seed = 22;
            let tp = sampler_with(&c, SignalKind::Traces);
            let lp = sampler_with(&c, SignalKind::Logs);
            let mut rng = SplitMix(99);
            let ids: Vec<Vec<u8>> = (0..5000).map(|_| rng.trace_id()).collect();
            let mut ts = traces(ids.iter().map(|id| span(id.clone(), "")).collect());
            let mut ls = logs(ids.iter().map(|id| log(id.clone(), vec![])).collect());
            tp.sample(&mut ts);
            lp.sample(&mut ls);
            let kept_spans: Vec<Vec<u8>> = out_spans(&ts).into_iter().map(|s| s.trace_id).collect();
            let kept_logs: Vec<Vec<u8>> = out_logs(&ls).into_iter().map(|l| l.trace_id).collect();
            assert_eq!(kept_spans, kept_logs, "{mode:?} {pct}");
            assert!(
                !kept_spans.is_empty() && kept_spans.len() < ids.len(),
                "{mode:?} {pct}"
            );
        }
    }
}

#[test]
fn logs_carry_threshold_and_randomness_attributes() {
    // hash_seed: both attributes, as the Collector's recordCarrier writes them.
    let mut c = cfg(Some(SamplerMode::HashSeed), 100.0);
    c.hash_seed = 22;
    let p = sampler_with(&c, SignalKind::Logs);
    let id = tid("0102030405060708090a0b0c0d0e0f10");
    let mut sig = logs(vec![log(id.clone(), vec![])]);
    p.sample(&mut sig);
    let rec = &out_logs(&sig)[0];
    assert_eq!(
        attrs::get_str(&rec.attributes, THRESHOLD_ATTRIBUTE),
        Some("0")
    );
    assert_eq!(
        attrs::get_str(&rec.attributes, RANDOMNESS_ATTRIBUTE),
        Some("2ef03615863443")
    );

    // proportional: threshold only, multiplied with the incoming one.
    let p = sampler_with(
        &cfg(Some(SamplerMode::Proportional), 50.0),
        SignalKind::Logs,
    );
    let mut sig = logs(vec![log(
        tid("ffffffffffffffffffffffffffffffff"),
        vec![attrs::key_value(THRESHOLD_ATTRIBUTE, attrs::string("8"))],
    )]);
    p.sample(&mut sig);
    let rec = &out_logs(&sig)[0];
    assert_eq!(
        attrs::get_str(&rec.attributes, THRESHOLD_ATTRIBUTE),
        Some("c")
    );
    assert_eq!(attrs::get_str(&rec.attributes, RANDOMNESS_ATTRIBUTE), None);

    // An explicit sampling.randomness decides instead of the trace id.
    let p = sampler_with(&cfg(Some(SamplerMode::Equalizing), 25.0), SignalKind::Logs);
    let mut sig = logs(vec![
        log(
            tid("ffffffffffffffffff00000000000000"),
            vec![attrs::key_value(
                RANDOMNESS_ATTRIBUTE,
                attrs::string("c0000000000000"),
            )],
        ),
        log(
            tid("ffffffffffffffffffffffffffffffff"),
            vec![attrs::key_value(
                RANDOMNESS_ATTRIBUTE,
                attrs::string("b0000000000000"),
            )],
        ),
    ]);
    p.sample(&mut sig);
    let kept = out_logs(&sig);
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].trace_id, tid("ffffffffffffffffff00000000000000"));
}

#[test]
fn logs_record_source_hashes_from_attribute() {
    let mut c = cfg(None, 50.0);
    c.attribute_source = AttributeSource::Record;
    c.from_attribute = "log.id".into();
    c.hash_seed = 7;
    let p = sampler_with(&c, SignalKind::Logs);
    let mut rng = SplitMix(3);
    let mut records = Vec::new();
    let mut expect = Vec::new();
    for i in 0..200 {
        let id = format!("id-{}", rng.next());
        // A trace id is present but ignored with attribute_source: record.
        let mut r = log(
            rng.trace_id(),
            vec![attrs::key_value("log.id", attrs::string(id.clone()))],
        );
        r.severity_number = i;
        expect.push(legacy_keep(id.as_bytes(), 7, 50.0));
        records.push(r);
    }
    let mut sig = logs(records);
    let tally = p.sample(&mut sig);
    let kept: Vec<i32> = out_logs(&sig).iter().map(|r| r.severity_number).collect();
    let want: Vec<i32> = (0..200).filter(|i| expect[*i as usize]).collect();
    assert_eq!(kept, want);
    assert_eq!(
        tally.decisions[Policy::Attribute.index()][1] as usize,
        want.len()
    );
    // A record without the attribute lacks randomness: dropped (fail_closed).
    let mut sig = logs(vec![log(vec![], vec![])]);
    assert_eq!(p.sample(&mut sig).errors[2], 1);
    assert!(out_logs(&sig).is_empty());
}

#[test]
fn logs_sampling_priority_overrides() {
    let mut c = cfg(Some(SamplerMode::HashSeed), 0.5);
    c.sampling_priority = "priority".into();
    let p = sampler_with(&c, SignalKind::Logs);
    let mut rng = SplitMix(11);
    let mk = |rng: &mut SplitMix, v: Option<AnyValueKind>| {
        let a = match v {
            Some(AnyValueKind::Int(i)) => vec![attrs::key_value("priority", attrs::int(i))],
            Some(AnyValueKind::Double(d)) => vec![attrs::key_value("priority", attrs::double(d))],
            None => vec![],
        };
        log(rng.trace_id(), a)
    };
    let n = 2000;
    let count = |p: &ProbabilisticSampler, rng: &mut SplitMix, v: Option<AnyValueKind>| {
        let recs = (0..n).map(|_| mk(rng, v)).collect();
        let mut sig = logs(recs);
        p.sample(&mut sig);
        out_logs(&sig).len()
    };
    assert_eq!(count(&p, &mut rng, Some(AnyValueKind::Int(100))), n);
    assert_eq!(count(&p, &mut rng, Some(AnyValueKind::Double(150.0))), n);
    assert_eq!(count(&p, &mut rng, Some(AnyValueKind::Int(0))), 0);
    let half = count(&p, &mut rng, Some(AnyValueKind::Double(50.0)));
    assert!((800..1200).contains(&half), "{half}");
    let base = count(&p, &mut rng, None);
    assert!(base < 40, "{base}");
}

#[derive(Clone, Copy)]
enum AnyValueKind {
    Int(i64),
    Double(f64),
}

// ------------------------------------------------------------ config, factory, runtime

#[test]
fn config_defaults_and_validation() {
    let node = Node::from_yaml_str("t.yaml", "{}").unwrap();
    let c: ProbabilisticSamplerConfig = node.deserialize().unwrap();
    assert_eq!(c, ProbabilisticSamplerConfig::default());
    assert_eq!(c.mode(), SamplerMode::HashSeed);
    assert!(c.fail_closed);
    assert_eq!(c.sampling_precision, 4);
    assert!(ProbabilisticSamplerFactory.check(&node).is_empty());

    let node = Node::from_yaml_str(
        "t.yaml",
        "mode: proportional\nsampling_percentage: 15\nhash_seed: 22\nfail_closed: false\nsampling_precision: 6\nattribute_source: record\nfrom_attribute: log.id\nsampling_priority: prio\n",
    )
    .unwrap();
    let c: ProbabilisticSamplerConfig = node.deserialize().unwrap();
    assert_eq!(c.mode, Some(SamplerMode::Proportional));
    assert_eq!(c.attribute_source, AttributeSource::Record);
    assert!(!c.fail_closed);

    for (yaml, needle) in [
        ("sampling_precision: 0", "sampling_precision"),
        ("sampling_precision: 15", "sampling_precision"),
        ("sampling_percentage: -1", "negative"),
        ("sampling_percentage: 1e-20", "too small"),
        ("sampling_percentage: .nan", "invalid"),
        ("mode: fast", "mode"),
        ("attribute_source: span", "attribute_source"),
        ("attribute_source: record", "from_attribute"),
        ("sampling_percentag: 10", "sampling_percentag"),
    ] {
        let node = Node::from_yaml_str("t.yaml", yaml).unwrap();
        let errs = ProbabilisticSamplerFactory.check(&node);
        assert_eq!(errs.len(), 1, "{yaml}: {errs:?}");
        let text = errs[0].to_string() + &errs[0].path + &errs[0].message;
        assert!(text.contains(needle), "{yaml}: {text}");
    }
}

#[test]
fn mode_selection() {
    assert_eq!(Mode::build(&cfg(None, 0.0)), Mode::Never);
    assert_eq!(
        Mode::build(&cfg(Some(SamplerMode::HashSeed), 0.001)),
        Mode::Never
    );
    assert!(matches!(Mode::build(&cfg(None, 10.0)), Mode::Hash { .. }));
    assert_eq!(
        Mode::build(&cfg(Some(SamplerMode::Equalizing), 10.0)),
        Mode::Equalizing {
            threshold: Threshold::parse_tvalue("e666").unwrap()
        }
    );
    // Equalizing keeps a higher incoming threshold, proportional multiplies.
    let eq = Mode::build(&cfg(Some(SamplerMode::Equalizing), 50.0));
    let f = Threshold::parse_tvalue("f").unwrap();
    assert_eq!(eq.decide(Some(f)), f);
    let prop = Mode::build(&cfg(Some(SamplerMode::Proportional), 50.0));
    assert_eq!(prop.decide(Some(f)).tvalue(), "f8");
    // 0% never samples, but sampling.priority can still keep a span.
    let p = sampler_with(&cfg(None, 0.0), SignalKind::Traces);
    assert_eq!(
        sample_one(&p, span(tid("fefefefefefefefefe80000000000000"), "")),
        None
    );
    let mut s = span(tid("fefefefefefefefefe80000000000000"), "");
    s.attributes.push(attrs::key_value(
        SPAN_PRIORITY_ATTRIBUTE,
        attrs::string("1"),
    ));
    assert_eq!(sample_one(&p, s).as_deref(), Some("ot=th:0"));
}

#[test]
fn factory_refuses_metrics_pipelines() {
    let ctx = ComponentContext::for_tests(ComponentKind::Processor, "probabilistic_sampler");
    let node = Node::from_yaml_str("t.yaml", "sampling_percentage: 10").unwrap();
    assert!(ProbabilisticSamplerFactory
        .create(ctx, &node, SignalKind::Metrics, Arc::new(Sink::default()))
        .is_err());
    assert!(!ProbabilisticSamplerFactory.signals().metrics);
}

#[tokio::test]
async fn consume_counts_forwards_and_settles_dropped_batches() {
    let ctx = ComponentContext::for_tests(ComponentKind::Processor, "probabilistic_sampler/x");
    let sink = Arc::new(Sink::default());
    let p = ProbabilisticSampler::new(
        &ctx,
        &cfg(Some(SamplerMode::Proportional), 50.0),
        SignalKind::Traces,
        sink.clone(),
    )
    .unwrap();
    // Randomness 0x80.. is kept at 50%, 0x7f.. is not.
    let keep = tid("000000000000000000800000000000aa");
    let drop_ = tid("0000000000000000007fffffffffffaa");
    let (acks, waiter) = Acks::tracked();
    let mut batch = Batch::new(traces(vec![
        span(keep.clone(), ""),
        span(drop_.clone(), ""),
    ]));
    batch.acks = acks;
    p.consume(batch).await.unwrap();
    assert!(waiter.wait().await);
    let got = sink.got.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert_eq!(out_spans(&got[0]).len(), 1);

    // A batch whose items are all dropped is not forwarded; its source is
    // acknowledged (dropped on purpose is not a failure).
    let (acks, waiter) = Acks::tracked();
    let mut batch = Batch::new(traces(vec![span(drop_.clone(), "")]));
    batch.acks = acks;
    p.consume(batch).await.unwrap();
    assert!(waiter.wait().await);
    assert_eq!(sink.got.lock().unwrap().len(), 1);

    let m = |labels: &str| {
        let text = ctx.telemetry.render();
        text.lines()
            .find(|l| l.starts_with(labels))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let base = "otelcol_processor_probabilistic_sampler_count_traces_sampled{processor=\"probabilistic_sampler/x\",policy=\"trace_id_w3c\",sampled=";
    assert_eq!(m(&format!("{base}\"true\"}}")), 1);
    assert_eq!(m(&format!("{base}\"false\"}}")), 2);
    assert_eq!(
        m("otelcol_processor_probabilistic_sampler_count_spans_processed_total{processor=\"probabilistic_sampler/x\",policy=\"trace_id_w3c\",sampled=\"false\"}"),
        2
    );
    assert_eq!(
        m("otelcol_processor_incoming_items{processor=\"probabilistic_sampler/x\""),
        3
    );
    assert_eq!(
        m("otelcol_processor_outgoing_items{processor=\"probabilistic_sampler/x\""),
        1
    );
}
