//! gRPC codecs that avoid protobuf work: the load generator sends pre-encoded
//! bytes, and the sink counts items by walking the wire format without
//! building messages.

use std::marker::PhantomData;

use bytes::{Buf, BufMut, Bytes};
use prost::Message;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::Status;

/// Client codec: sends already-encoded request bytes; decodes the (small)
/// response with prost so partial-success rejections can be reported.
pub struct RawRequestCodec<R>(PhantomData<R>);

impl<R> Default for RawRequestCodec<R> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

pub struct BytesEncoder;

impl Encoder for BytesEncoder {
    type Item = Bytes;
    type Error = Status;
    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

pub struct ProstDecoder<R>(PhantomData<R>);

impl<R: Message + Default> Decoder for ProstDecoder<R> {
    type Item = R;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<R>, Status> {
        R::decode(src)
            .map(Some)
            .map_err(|e| Status::internal(format!("decoding response: {e}")))
    }
}

impl<R: Message + Default + Send + 'static> Codec for RawRequestCodec<R> {
    type Encode = Bytes;
    type Decode = R;
    type Encoder = BytesEncoder;
    type Decoder = ProstDecoder<R>;
    fn encoder(&mut self) -> BytesEncoder {
        BytesEncoder
    }
    fn decoder(&mut self) -> ProstDecoder<R> {
        ProstDecoder(PhantomData)
    }
}

/// The wire format was not valid protobuf.
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed;

fn varint(buf: &[u8], pos: &mut usize) -> Result<u64, Malformed> {
    let mut out = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos).ok_or(Malformed)?;
        *pos += 1;
        out |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(out);
        }
    }
    Err(Malformed)
}

/// Calls `f(field_number, bytes)` for every length-delimited field of a
/// message and skips every other field.
fn for_each_len_field(
    buf: &[u8],
    mut f: impl FnMut(u64, &[u8]) -> Result<(), Malformed>,
) -> Result<(), Malformed> {
    let mut pos = 0;
    while pos < buf.len() {
        let key = varint(buf, &mut pos)?;
        match key & 7 {
            0 => {
                varint(buf, &mut pos)?;
            }
            1 => pos += 8,
            2 => {
                let len = usize::try_from(varint(buf, &mut pos)?).map_err(|_| Malformed)?;
                let end = pos.checked_add(len).ok_or(Malformed)?;
                f(key >> 3, buf.get(pos..end).ok_or(Malformed)?)?;
                pos = end;
            }
            5 => pos += 4,
            _ => return Err(Malformed),
        }
    }
    if pos == buf.len() {
        Ok(())
    } else {
        Err(Malformed)
    }
}

/// Counts occurrences of the last field of `path` (all length-delimited)
/// nested under the earlier ones.
fn count_path(buf: &[u8], path: &[u64]) -> Result<u64, Malformed> {
    let Some((&first, rest)) = path.split_first() else {
        return Ok(0);
    };
    let mut n = 0;
    for_each_len_field(buf, |field, inner| {
        if field == first {
            n += if rest.is_empty() {
                1
            } else {
                count_path(inner, rest)?
            };
        }
        Ok(())
    })?;
    Ok(n)
}

/// Entries in a decompressed Loki `logproto.PushRequest`:
/// streams(1) → entries(2).
pub fn loki_entries(msg: &[u8]) -> Result<u64, Malformed> {
    count_path(msg, &[1, 2])
}

/// One OTLP signal the sink accepts.
pub trait Signal: Send + Sync + 'static {
    const SERVICE: &'static str;
    const PATH: &'static str;
    /// Items (spans, data points, log records) in an encoded export request.
    fn count(msg: &[u8]) -> Result<u64, Malformed>;
}

pub struct Traces;
pub struct Metrics;
pub struct Logs;

impl Signal for Traces {
    const SERVICE: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
    const PATH: &'static str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
    fn count(msg: &[u8]) -> Result<u64, Malformed> {
        // resource_spans(1) → scope_spans(2) → spans(2)
        count_path(msg, &[1, 2, 2])
    }
}

impl Signal for Logs {
    const SERVICE: &'static str = "opentelemetry.proto.collector.logs.v1.LogsService";
    const PATH: &'static str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
    fn count(msg: &[u8]) -> Result<u64, Malformed> {
        // resource_logs(1) → scope_logs(2) → log_records(2)
        count_path(msg, &[1, 2, 2])
    }
}

impl Signal for Metrics {
    const SERVICE: &'static str = "opentelemetry.proto.collector.metrics.v1.MetricsService";
    const PATH: &'static str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";
    fn count(msg: &[u8]) -> Result<u64, Malformed> {
        // resource_metrics(1) → scope_metrics(2) → metrics(2) → one of
        // gauge(5) sum(7) histogram(9) exponential_histogram(10) summary(11)
        // → data_points(1)
        let mut n = 0;
        for_each_len_field(msg, |f, rm| {
            if f != 1 {
                return Ok(());
            }
            for_each_len_field(rm, |f, sm| {
                if f != 2 {
                    return Ok(());
                }
                for_each_len_field(sm, |f, metric| {
                    if f != 2 {
                        return Ok(());
                    }
                    for_each_len_field(metric, |f, data| {
                        if matches!(f, 5 | 7 | 9 | 10 | 11) {
                            n += count_path(data, &[1])?;
                        }
                        Ok(())
                    })
                })
            })
        })?;
        Ok(n)
    }
}

/// What the sink's decoder yields: item count and uncompressed size.
pub struct Counted {
    pub items: u64,
    pub bytes: u64,
}

/// Server codec for the sink: counts on decode, answers an empty response
/// (which is the valid encoding of an Export*ServiceResponse with no partial
/// success).
pub struct CountCodec<S>(PhantomData<S>);

impl<S> Default for CountCodec<S> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

pub struct EmptyEncoder;

impl Encoder for EmptyEncoder {
    type Item = ();
    type Error = Status;
    fn encode(&mut self, _: (), _: &mut EncodeBuf<'_>) -> Result<(), Status> {
        Ok(())
    }
}

pub struct CountDecoder<S>(PhantomData<S>);

impl<S: Signal> Decoder for CountDecoder<S> {
    type Item = Counted;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Counted>, Status> {
        let len = src.remaining();
        // The decode buffer is contiguous; fall back to a copy if it ever isn't.
        let items = if src.chunk().len() == len {
            let r = S::count(src.chunk());
            src.advance(len);
            r
        } else {
            S::count(&src.copy_to_bytes(len))
        }
        .map_err(|Malformed| Status::invalid_argument("malformed OTLP protobuf"))?;
        Ok(Some(Counted {
            items,
            bytes: len as u64,
        }))
    }
}

impl<S: Signal> Codec for CountCodec<S> {
    type Encode = ();
    type Decode = Counted;
    type Encoder = EmptyEncoder;
    type Decoder = CountDecoder<S>;
    fn encoder(&mut self) -> EmptyEncoder {
        EmptyEncoder
    }
    fn decoder(&mut self) -> CountDecoder<S> {
        CountDecoder(PhantomData)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gen::{build_request, Shape};
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::metrics::v1::{
        metric::Data, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
        ResourceMetrics, ScopeMetrics, Sum,
    };

    #[test]
    fn counts_spans_like_prost() {
        let mut rng = fastrand::Rng::with_seed(3);
        let mut req = build_request(
            Shape {
                spans_per_request: 37,
                attrs_per_span: 10,
            },
            &mut rng,
        );
        let extra = build_request(
            Shape {
                spans_per_request: 5,
                attrs_per_span: 2,
            },
            &mut rng,
        );
        req.resource_spans.extend(extra.resource_spans);
        assert_eq!(Traces::count(&req.encode_to_vec()), Ok(42));
        assert_eq!(Traces::count(&[]), Ok(0));
    }

    #[test]
    fn counts_points_and_records() {
        let metric = |data| Metric {
            name: "m".into(),
            data: Some(data),
            ..Default::default()
        };
        let req = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![
                        metric(Data::Gauge(Gauge {
                            data_points: vec![NumberDataPoint::default(); 3],
                        })),
                        metric(Data::Sum(Sum {
                            data_points: vec![NumberDataPoint::default(); 2],
                            ..Default::default()
                        })),
                        metric(Data::Histogram(Histogram {
                            data_points: vec![HistogramDataPoint::default(); 4],
                            ..Default::default()
                        })),
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        assert_eq!(Metrics::count(&req.encode_to_vec()), Ok(9));
        let logs = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: vec![LogRecord::default(); 6],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        assert_eq!(Logs::count(&logs.encode_to_vec()), Ok(6));
    }

    #[test]
    fn counts_loki_entries() {
        // Hand-encoded from Loki's field numbers: two streams with 2 and 1
        // entries; labels(1), entries(2) { timestamp(1) {seconds(1)}, line(2) }.
        fn ld(field: u8, body: &[u8]) -> Vec<u8> {
            let mut v = vec![field << 3 | 2, body.len() as u8];
            v.extend_from_slice(body);
            v
        }
        let entry = [ld(1, &[0x08, 0x01]), ld(2, b"hello")].concat();
        let s1 = [ld(1, b"{a=\"b\"}"), ld(2, &entry), ld(2, &entry)].concat();
        let s2 = [ld(1, b"{a=\"c\"}"), ld(2, &entry), vec![3 << 3, 7]].concat();
        let push = [ld(1, &s1), ld(1, &s2)].concat();
        assert_eq!(loki_entries(&push), Ok(3));
        assert_eq!(loki_entries(&push[..push.len() - 1]), Err(Malformed));
    }

    #[test]
    fn rejects_truncated_input() {
        let mut rng = fastrand::Rng::with_seed(9);
        let bytes = build_request(
            Shape {
                spans_per_request: 3,
                attrs_per_span: 1,
            },
            &mut rng,
        )
        .encode_to_vec();
        assert_eq!(Traces::count(&bytes[..bytes.len() - 1]), Err(Malformed));
    }
}
