//! One request to a Datadog endpoint, kept as separately encoded parts so
//! that it can be merged at dequeue and split in two when the intake answers
//! 413, without decoding anything.
//!
//! Every Datadog payload is a list inside an envelope: a JSON array of log
//! items, `{"series":[…]}`, a msgpack array of traces, or a protobuf message
//! whose repeated field entries can be concatenated. A [`Framing`] holds the
//! envelope; a [`DatadogRequest`] holds the list elements (`parts`), each
//! already encoded.

use bytes::Bytes;
use confluo_pipeline::exporter_helper::Request;
use std::sync::Arc;

/// The endpoints this exporter speaks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Route {
    /// `POST /api/v2/series`, JSON.
    SeriesV2,
    /// `POST /api/v1/series`, JSON.
    SeriesV1,
    /// `POST /api/beta/sketches`, protobuf `SketchPayload`.
    Sketches,
    /// `POST /api/v2/logs`, JSON array.
    Logs,
    /// `POST /api/v0.2/traces`, protobuf `AgentPayload`.
    TracesIntake,
    /// `PUT /v0.4/traces`, msgpack array of traces.
    TracesAgent,
    /// `POST /api/v0.2/stats`, msgpack `StatsPayload`.
    StatsIntake,
    /// `PUT /v0.6/stats`, msgpack `ClientStatsPayload`.
    StatsAgent,
}

impl Route {
    pub fn path(self) -> &'static str {
        match self {
            Route::SeriesV2 => "/api/v2/series",
            Route::SeriesV1 => "/api/v1/series",
            Route::Sketches => "/api/beta/sketches",
            Route::Logs => "/api/v2/logs",
            Route::TracesIntake => "/api/v0.2/traces",
            Route::TracesAgent => "/v0.4/traces",
            Route::StatsIntake => "/api/v0.2/stats",
            Route::StatsAgent => "/v0.6/stats",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Route::SeriesV2 | Route::SeriesV1 | Route::Logs => "application/json",
            Route::Sketches | Route::TracesIntake => "application/x-protobuf",
            Route::TracesAgent | Route::StatsIntake | Route::StatsAgent => "application/msgpack",
        }
    }

    /// The Agent's trace API takes PUT (POST works too); the intakes take POST.
    pub fn method(self) -> http::Method {
        match self {
            Route::TracesAgent | Route::StatsAgent => http::Method::PUT,
            _ => http::Method::POST,
        }
    }

    /// Most bytes of one uncompressed body (the published limits: series
    /// 5 MiB decompressed, logs 5 MB, traces 3.2 MB). Requests are cut below
    /// it when encoded, merges stop at it.
    pub fn max_body_bytes(self) -> usize {
        match self {
            Route::SeriesV2 | Route::SeriesV1 | Route::Sketches => 5 << 20,
            Route::Logs => 5_000_000,
            Route::TracesIntake | Route::TracesAgent => 3_200_000,
            Route::StatsIntake | Route::StatsAgent => 3_200_000,
        }
    }

    /// Most parts of one request (logs: 1000 entries; an Agent's
    /// `/v0.6/stats` body is one `ClientStatsPayload`, never a list).
    pub fn max_parts(self) -> usize {
        match self {
            Route::Logs => 1000,
            Route::StatsAgent => 1,
            _ => usize::MAX,
        }
    }
}

/// How the parts are laid out in a body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Count {
    /// Nothing announces the number of parts (JSON, protobuf).
    None,
    /// A msgpack array header with the number of parts comes right after
    /// the prefix.
    MsgpackArray,
}

/// The envelope around the parts.
#[derive(Debug, PartialEq, Eq)]
pub struct Framing {
    pub prefix: Bytes,
    /// Between two parts (`,` for JSON, nothing for msgpack and protobuf).
    pub separator: &'static [u8],
    pub suffix: Bytes,
    pub count: Count,
}

impl Framing {
    /// `[` parts `]`.
    pub fn json_array() -> Framing {
        Framing {
            prefix: Bytes::from_static(b"["),
            separator: b",",
            suffix: Bytes::from_static(b"]"),
            count: Count::None,
        }
    }

    /// `{"series":[` parts `]}`.
    pub fn json_series() -> Framing {
        Framing {
            prefix: Bytes::from_static(b"{\"series\":["),
            separator: b",",
            suffix: Bytes::from_static(b"]}"),
            count: Count::None,
        }
    }

    /// A msgpack array of the parts (each one msgpack value).
    pub fn msgpack_array() -> Framing {
        Framing {
            prefix: Bytes::new(),
            separator: b"",
            suffix: Bytes::new(),
            count: Count::MsgpackArray,
        }
    }

    /// A protobuf message: `prefix` holds its scalar fields, each part is
    /// one encoded entry (tag, length, bytes) of a repeated field.
    pub fn protobuf(prefix: Bytes) -> Framing {
        Framing {
            prefix,
            separator: b"",
            suffix: Bytes::new(),
            count: Count::None,
        }
    }

    fn overhead(&self, parts: usize) -> usize {
        self.prefix.len()
            + self.suffix.len()
            + self.separator.len() * parts.saturating_sub(1)
            + if self.count == Count::MsgpackArray {
                5
            } else {
                0
            }
    }
}

/// Appends a msgpack array header for `n` elements.
pub fn msgpack_array_header(out: &mut Vec<u8>, n: usize) {
    if n < 16 {
        out.push(0x90 | n as u8);
    } else if n <= u16::MAX as usize {
        out.push(0xdc);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(0xdd);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

/// One request: a route, its envelope and its encoded parts.
#[derive(Debug)]
pub struct DatadogRequest {
    pub route: Route,
    pub framing: Arc<Framing>,
    pub parts: Vec<Bytes>,
    /// Items (points, log records, spans) per part, for counting what a
    /// split half or a rejection holds.
    pub part_items: Vec<u32>,
    /// Sum of `parts`' lengths.
    parts_bytes: usize,
}

impl DatadogRequest {
    pub fn new(route: Route, framing: Arc<Framing>) -> DatadogRequest {
        DatadogRequest {
            route,
            framing,
            parts: Vec::new(),
            part_items: Vec::new(),
            parts_bytes: 0,
        }
    }

    /// The body size with one more part of `len` bytes.
    pub fn size_with(&self, len: usize) -> usize {
        self.parts_bytes + len + self.framing.overhead(self.parts.len() + 1)
    }

    /// Whether a part of `len` bytes still fits under the route's limits.
    /// An empty request always takes one part (an oversize part goes alone).
    pub fn fits(&self, len: usize) -> bool {
        self.parts.is_empty()
            || (self.parts.len() < self.route.max_parts()
                && self.size_with(len) <= self.route.max_body_bytes())
    }

    pub fn push(&mut self, part: Bytes, items: u32) {
        self.parts_bytes += part.len();
        self.parts.push(part);
        self.part_items.push(items);
    }

    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// The uncompressed body.
    pub fn body(&self) -> Vec<u8> {
        let f = &self.framing;
        let mut out = Vec::with_capacity(self.parts_bytes + f.overhead(self.parts.len()));
        out.extend_from_slice(&f.prefix);
        if f.count == Count::MsgpackArray {
            msgpack_array_header(&mut out, self.parts.len());
        }
        for (i, p) in self.parts.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(f.separator);
            }
            out.extend_from_slice(p);
        }
        out.extend_from_slice(&f.suffix);
        out
    }

    /// Two halves, or `None` for a request of one part.
    pub fn split(self) -> Result<(DatadogRequest, DatadogRequest), DatadogRequest> {
        if self.parts.len() < 2 {
            return Err(self);
        }
        let mid = self.parts.len() / 2;
        let mut parts = self.parts;
        let mut items = self.part_items;
        let back_parts = parts.split_off(mid);
        let back_items = items.split_off(mid);
        let make = |parts: Vec<Bytes>, part_items: Vec<u32>| DatadogRequest {
            route: self.route,
            framing: self.framing.clone(),
            parts_bytes: parts.iter().map(Bytes::len).sum(),
            parts,
            part_items,
        };
        Ok((make(parts, items), make(back_parts, back_items)))
    }

    /// Appends `other`'s parts regardless of limits (used to hand back what
    /// is left to retry; the next attempt splits again if needed).
    pub fn absorb(&mut self, other: DatadogRequest) {
        self.parts_bytes += other.parts_bytes;
        self.parts.extend(other.parts);
        self.part_items.extend(other.part_items);
    }
}

impl Request for DatadogRequest {
    fn item_count(&self) -> usize {
        self.part_items.iter().map(|&n| n as usize).sum()
    }

    fn byte_size(&self) -> usize {
        self.parts_bytes + self.framing.overhead(self.parts.len())
    }

    fn merge(&mut self, other: Self) -> Result<(), Self> {
        let same_envelope =
            Arc::ptr_eq(&self.framing, &other.framing) || self.framing == other.framing;
        if self.route != other.route
            || !same_envelope
            || self.parts.len() + other.parts.len() > self.route.max_parts()
            || self.parts_bytes
                + other.parts_bytes
                + self.framing.overhead(self.parts.len() + other.parts.len())
                > self.route.max_body_bytes()
        {
            return Err(other);
        }
        self.absorb(other);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(route: Route, framing: Framing, parts: &[&'static [u8]]) -> DatadogRequest {
        let mut r = DatadogRequest::new(route, Arc::new(framing));
        for p in parts {
            r.push(Bytes::from_static(p), 1);
        }
        r
    }

    #[test]
    fn json_bodies_join_parts_with_commas() {
        let r = req(
            Route::SeriesV2,
            Framing::json_series(),
            &[b"{\"a\":1}", b"{\"b\":2}"],
        );
        assert_eq!(r.body(), b"{\"series\":[{\"a\":1},{\"b\":2}]}");
        assert_eq!(r.byte_size(), r.body().len());
        let empty = req(Route::Logs, Framing::json_array(), &[]);
        assert_eq!(empty.body(), b"[]");
    }

    #[test]
    fn msgpack_bodies_count_their_parts() {
        let r = req(
            Route::TracesAgent,
            Framing::msgpack_array(),
            &[b"\x90", b"\x90"],
        );
        assert_eq!(r.body(), b"\x92\x90\x90");
        let mut many = DatadogRequest::new(Route::TracesAgent, Arc::new(Framing::msgpack_array()));
        for _ in 0..20 {
            many.push(Bytes::from_static(b"\x90"), 1);
        }
        let body = many.body();
        assert_eq!(&body[..3], &[0xdc, 0, 20]);
        assert_eq!(body.len(), 23);
    }

    #[test]
    fn split_halves_and_merge_restores() {
        let r = req(Route::Logs, Framing::json_array(), &[b"1", b"2", b"3"]);
        let (mut a, b) = r.split().unwrap();
        assert_eq!(a.body(), b"[1]");
        assert_eq!(b.body(), b"[2,3]");
        assert_eq!(b.item_count(), 2);
        a.merge(b).unwrap();
        assert_eq!(a.body(), b"[1,2,3]");
        let one = req(Route::Logs, Framing::json_array(), &[b"1"]);
        assert!(one.split().is_err());
    }

    #[test]
    fn merge_refuses_other_routes_envelopes_and_limits() {
        let mut a = req(Route::Logs, Framing::json_array(), &[b"1"]);
        let b = req(Route::SeriesV2, Framing::json_series(), &[b"2"]);
        assert!(a.merge(b).is_err());
        let p1 = Framing::protobuf(Bytes::from_static(b"\x0a\x01a"));
        let p2 = Framing::protobuf(Bytes::from_static(b"\x0a\x01b"));
        let mut x = req(Route::TracesIntake, p1, &[b"x"]);
        assert!(x.merge(req(Route::TracesIntake, p2, &[b"y"])).is_err());
        let mut full = DatadogRequest::new(Route::Logs, Arc::new(Framing::json_array()));
        for _ in 0..1000 {
            full.push(Bytes::from_static(b"1"), 1);
        }
        assert!(!full.fits(1));
        assert!(full
            .merge(req(Route::Logs, Framing::json_array(), &[b"2"]))
            .is_err());
    }
}
