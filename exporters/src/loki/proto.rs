//! Loki's push protobuf, hand-written from the published field numbers of
//! `grafana/loki:pkg/push/push.proto` (package `logproto`) and
//! `google/protobuf/timestamp.proto`. Only what a client sends:
//! `EntryAdapter.parsed` (4) is query-side, `PushRequest.format` (2) is
//! server-internal, and `StreamAdapter.hash` (3) is ignored by the
//! distributor (it re-hashes the parsed labels), so it is never set.

/// `logproto.PushRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PushRequest {
    #[prost(message, repeated, tag = "1")]
    pub streams: Vec<StreamAdapter>,
}

/// `logproto.StreamAdapter`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StreamAdapter {
    /// A selector string: `{name="value", …}`.
    #[prost(string, tag = "1")]
    pub labels: String,
    #[prost(message, repeated, tag = "2")]
    pub entries: Vec<EntryAdapter>,
    #[prost(uint64, tag = "3")]
    pub hash: u64,
}

/// `logproto.EntryAdapter`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EntryAdapter {
    #[prost(message, optional, tag = "1")]
    pub timestamp: Option<Timestamp>,
    #[prost(string, tag = "2")]
    pub line: String,
    #[prost(message, repeated, tag = "3")]
    pub structured_metadata: Vec<LabelPairAdapter>,
}

/// `logproto.LabelPairAdapter`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct LabelPairAdapter {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `google.protobuf.Timestamp`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, prost::Message)]
pub struct Timestamp {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

impl Timestamp {
    pub fn from_unix_nanos(ns: u64) -> Timestamp {
        Timestamp {
            seconds: (ns / 1_000_000_000) as i64,
            nanos: (ns % 1_000_000_000) as i32,
        }
    }

    pub fn unix_nanos(&self) -> u64 {
        (self.seconds.max(0) as u64)
            .saturating_mul(1_000_000_000)
            .saturating_add(self.nanos.max(0) as u64)
    }
}

impl EntryAdapter {
    pub fn unix_nanos(&self) -> u64 {
        self.timestamp.map_or(0, |t| t.unix_nanos())
    }
}
