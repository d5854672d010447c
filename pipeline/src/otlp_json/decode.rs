//! `Decode` impls: one match per message, accepting both the lowerCamelCase
//! JSON names and the original snake_case proto names (receivers should be
//! lenient), skipping unknown members.

use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, ArrayValue, EntityRef, InstrumentationScope, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};
use opentelemetry_proto::tonic::metrics::v1::{
    exemplar, exponential_histogram_data_point, metric, number_data_point, summary_data_point,
    AggregationTemporality, Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge,
    Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    Summary, SummaryDataPoint,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    span, status, ResourceSpans, ScopeSpans, Span, Status,
};

use super::parse::{Decode, Parser, Result};

const TRACE_ID_LEN: usize = 16;
const SPAN_ID_LEN: usize = 8;

fn span_kind(s: &str) -> Option<i32> {
    span::SpanKind::from_str_name(s).map(|v| v as i32)
}
fn status_code(s: &str) -> Option<i32> {
    status::StatusCode::from_str_name(s).map(|v| v as i32)
}
fn severity(s: &str) -> Option<i32> {
    SeverityNumber::from_str_name(s).map(|v| v as i32)
}
fn temporality(s: &str) -> Option<i32> {
    AggregationTemporality::from_str_name(s).map(|v| v as i32)
}

// ---- common / resource ------------------------------------------------------

impl Decode for AnyValue {
    fn field(&mut self, p: &mut Parser<'_>, key: &str) -> Result<()> {
        use any_value::Value as V;
        // A oneof: the last non-null member wins (as in the Collector's
        // pdata JSON reader); a null member leaves the value untouched.
        let v = match key {
            "stringValue" | "string_value" => {
                p.field("stringValue", Parser::str_val)?.map(V::StringValue)
            }
            "boolValue" | "bool_value" => p.field("boolValue", Parser::bool_val)?.map(V::BoolValue),
            "intValue" | "int_value" => p
                .field("intValue", |p| p.int_val("int64"))?
                .map(V::IntValue),
            "doubleValue" | "double_value" => {
                p.field("doubleValue", Parser::f64_val)?.map(V::DoubleValue)
            }
            "arrayValue" | "array_value" => p.msg_f::<ArrayValue>("arrayValue")?.map(V::ArrayValue),
            "kvlistValue" | "kvlist_value" => {
                p.msg_f::<KeyValueList>("kvlistValue")?.map(V::KvlistValue)
            }
            "bytesValue" | "bytes_value" => {
                p.field("bytesValue", Parser::bytes_val)?.map(V::BytesValue)
            }
            "stringValueStrindex" | "string_value_strindex" => p
                .field("stringValueStrindex", |p| p.int_val("int32"))?
                .map(V::StringValueStrindex),
            _ => return p.skip(),
        };
        if v.is_some() {
            self.value = v;
        }
        Ok(())
    }
}

impl Decode for ArrayValue {
    fn field(&mut self, p: &mut Parser<'_>, key: &str) -> Result<()> {
        match key {
            "values" => self.values = p.msgs_f("values")?,
            _ => p.skip()?,
        }
        Ok(())
    }
}

impl Decode for KeyValueList {
    fn field(&mut self, p: &mut Parser<'_>, key: &str) -> Result<()> {
        match key {
            "values" => self.values = p.msgs_f("values")?,
            _ => p.skip()?,
        }
        Ok(())
    }
}

impl Decode for KeyValue {
    fn field(&mut self, p: &mut Parser<'_>, key: &str) -> Result<()> {
        match key {
            "key" => self.key = p.string_f("key")?,
            "value" => self.value = p.msg_f("value")?,
            "keyStrindex" | "key_strindex" => self.key_strindex = p.i32_f("keyStrindex")?,
            _ => p.skip()?,
        }
        Ok(())
    }
}

impl Decode for InstrumentationScope {
    fn field(&mut self, p: &mut Parser<'_>, key: &str) -> Result<()> {
        match key {
            "name" => self.name = p.string_f("name")?,
            "version" => self.version = p.string_f("version")?,
            "attributes" => self.attributes = p.msgs_f("attributes")?,
            "droppedAttributesCount" | "dropped_attributes_count" => {
                self.dropped_attributes_count = p.u32_f("droppedAttributesCount")?
            }
            _ => p.skip()?,
        }
        Ok(())
    }
}

impl Decode for EntityRef {
    fn field(&mut self, p: &mut Parser<'_>, key: &str) -> Result<()> {
        match key {
            "schemaUrl" | "schema_url" => self.schema_url = p.string_f("schemaUrl")?,
            "type" => self.r#type = p.string_f("type")?,
            "idKeys" | "id_keys" => self.id_keys = p.list_f("idKeys", Parser::str_val)?,
            "descriptionKeys" | "description_keys" => {
                self.description_keys = p.list_f("descriptionKeys", Parser::str_val)?
            }
            _ => p.skip()?,
        }
        Ok(())
    }
}

impl Decode for Resource {
    fn field(&mut self, p: &mut Parser<'_>, key: &str) -> Result<()> {
        match key {
            "attributes" => self.attributes = p.msgs_f("attributes")?,
            "droppedAttributesCount" | "dropped_attributes_count" => {
                self.dropped_attributes_count = p.u32_f("droppedAttributesCount")?
            }
            "entityRefs" | "entity_refs" => self.entity_refs = p.msgs_f("entityRefs")?,
            _ => p.skip()?,
        }
        Ok(())
    }
}

// ---- traces -----------------------------------------------------------------

impl Decode for ExportTraceServiceRequest {
    fn field(&mut self, p: &mut Parser<'_>, key: &str) -> Result<()> {
        match key {
            "resourceSpans" | "resource_spans" => {
                self.resource_spans = p.msgs_f("resourceSpans")?
            }
            _ => p.skip()?,
        }
        Ok(())
    }
}

impl Decode for ResourceSpans {
    fn field(&mut self, p: &mut Parser<'_>, key: &str) -> Result<()> {
        match key {
            "resource" => self.resource = p.msg_f("resource")?,
            "scopeSpans" | "scope_spans" => self.scope_spans = p.msgs_f("scopeSpans")?,
            "schemaUrl" | "schema_url" => self.schema_url = p.string_f("schemaUrl")?,
            _ => p.skip()?,
        }
        Ok(())
    }
}

impl Decode for ScopeSpans {
    fn field(&mut self, p: &mut Parser<'_>, key: &str) -> Result<()> {
        match key {
            "scope" => self.scope = p.msg_f("scope")?,
            "spans" => self.spans = p.msgs_f("spans")?,
            "schemaUrl" | "schema_url" => self.schema_url = p.string_f("schemaUrl")?,
            _ => p.skip()?,
        }
        Ok(())
    }
}

impl Decode for Span {
    fn field(&mut self, p: &mut Parser<'_>, key: &str) -> Result<()> {
        match key {
            "traceId" | "trace_id" => self.trace_id = p.id_f("traceId", TRACE_ID_LEN)?,
            "spanId" | "span_id" => self.span_id = p.id_f("spanId", SPAN_ID_LEN)?,
            "traceState" | "trace_state" => self.trace_state = p.string_f("traceState")?,
            "parentSpanId" | "parent_span_id" => {
                self.parent_span_id = p.id_f("parentSpanId", SPAN_ID_LEN)?
            }
            "flags" => self.flags = p.u32_f("flags")?,
            "name" => self.name = p.string_f("name")?,
            "kind" => self.kind = p.enum_f("kind", span_kind)?,
            "startTimeUnixNano" | "start_time_unix_nano" => {
                self.start_time_unix_nano = p.u64_f("startTimeUnixNano")?
            }
            "endTimeUnixNano" | "end_time_unix_nano" => {
                self.end_time_unix_nano = p.u64_f("endTimeUnixNano")?
            }
            "attributes" => self.attributes = p.msgs_f("attributes")?,
            "droppedAttributesCount" | "dropped_attributes_count" => {
                self.dropped_attributes_count = p.u32_f("droppedAttributesCount")?
            }
            "events" => self.events = p.msgs_f("events")?,
            "droppedEventsCount" | "dropped_events_count" => {
                self.dropped_events_count = p.u32_f("droppedEventsCount")?
            }
            "links" => self.links = p.msgs_f("links")?,
            "droppedLinksCount" | "dropped_links_count" => {
                self.dropped_links_count = p.u32_f("droppedLinksCount")?
            }
            "status" => self.status = p.msg_f("status")?,
            _ => p.skip()?,
        }
        Ok(())
    }
}

impl Decode for span::Event {
    fn field(&mut self, p: &mut Parser<'_>, key: &str) -> Result<()> {
        match key {
            "timeUnixNano" | "time_unix_nano" => self.time_unix_nano = p.u64_f("timeUnixNano")?,
            "name" => self.name = p.string_f("name")?,
            "attributes" => self.attributes = p.msgs_f("attributes")?,
            "droppedAttributesCount" | "dropped_attributes_count" => {
                self.dropped_attributes_count = p.u32_f("droppedAttributesCount")?
            }
            _ => p.skip()?,
        }
        Ok(())
    }
}

impl Decode for span::Link {
    fn field(&mut self, p: &mut Parser<'_>, key: &str) -> Result<()> {
        match key {
            "traceId" | "trace_id" => self.trace_id = p.id_f("traceId", TRACE_ID_LEN)?,
            "spanId" | "span_id" => self.span_id = p.id_f("spanId", SPAN_ID_LEN)?,
            "traceState" | "trace_state" => self.trace_state = p.string_f("traceState")?,
            "attributes" => self.attributes = p.msgs_f("attributes")?,
            "droppedAttributesCount" | "dropped_attributes_count" => {
                self.dropped_attributes_count = p.u32_f("droppedAttributesCount")?
            }
            "flags" => self.flags = p.u32_f("flags")?,
            _ => p.skip()?,
        }
        Ok(())
    }
}

impl Decode for Status {
    fn field(&mut self, p: &mut Parser<'_>, key: &str) -> Result<()> {
        match key {
            "message" => self.message = p.string_f("message")?,
            "code" => self.code = p.enum_f("code", status_code)?,
            _ => p.skip()?,
        }
        Ok(())
    }
}

impl Decode for ExportTraceServiceResponse {
    fn field(&mut self, p: &mut Parser<'_>, key: &str) -> Result<()> {
        match key {
            "partialSuccess" | "partial_success" => {
                self.partial_success = p.msg_f("partialSuccess")?
            }
            _ => p.skip()?,
        }
        Ok(())
    }
}

impl Decode for ExportTracePartialSuccess {
    fn field(&mut self, p: &mut Parser<'_>, key: &str) -> Result<()> {
        match key {
            "rejectedSpans" | "rejected_spans" => self.rejected_spans = p.i64_f("rejectedSpans")?,
            "errorMessage" | "error_message" => self.error_message = p.string_f("errorMessage")?,
            _ => p.skip()?,
        }
        Ok(())
    }
}

// ---- metrics ----------------------------------------------------------------

impl Decode for ExportMetricsServiceRequest {
    fn field(&mut self, p: &mut Parser<'_>, key: &str) -> Result<()> {
        match key {
            "resourceMetrics" | "resource_metrics" => {
                self.resource_metrics = p.msgs_f("resourceMetrics")?
            }
            _ => p.skip()?,
        }
        Ok(())
    }
}

impl Decode for ResourceMetrics {
    fn field(&mut self, p: &mut Parser<'_>, key: &str) -> Result<()> {
        match key {
            "resource" => self.resource = p.msg_f("resource")?,
            "scopeMetrics" | "scope_metrics" => self.scope_metrics = p.msgs_f("scopeMetrics")?,
            "schemaUrl" | "schema_url" => self.schema_url = p.string_f("schemaUrl")?,
            _ => p.skip()?,
        }
        Ok(())
    }
}

impl Decode for ScopeMetrics {
    fn field(&mut self, p: &mut Parser<'_>, key: &str) -> Result<()> {
        match key {
            "scope" => self.scope = p.msg_f("scope")?,
            "metrics" => self.metrics = p.msgs_f("metrics")?,
            "schemaUrl" | "schema_url" => self.schema_url = p.string_f("schemaUrl")?,
            _ => p.skip()?,
        }
        Ok(())
    }
}

impl Decode for Metric {
    fn field(&mut self, p: &mut Parser<'_>, key: &str) -> Result<()> {
        use metric::Data as D;
        // `data` is a oneof: last non-null member wins, null leaves it alone.
        let data = match key {
            "name" => return p.string_f("name").map(|v| self.name = v),
            "description" => return p.string_f("description").map(|v| self.description = v),
            "unit" => return p.string_f("unit").map(|v| self.unit = v),
            "metadata" => return p.msgs_f("metadata").map(|v| self.metadata = v),
            "gauge" => p.msg_f("gauge")?.map(D::Gauge),
            "sum" => p.msg_f("sum")?.map(D::Sum),
            "histogram" => p.msg_f("histogram")?.map(D::Histogram),
            "exponentialHistogram" | "exponential_histogram" => p
                .msg_f("exponentialHistogram")?
                .map(D::ExponentialHistogram),
            "summary" => p.msg_f("summary")?.map(D::Summary),
            _ => return p.skip(),
        };
        if data.is_some() {
            self.data = data;
        }
        Ok(())
    }
}

impl Decode for Gauge {
    fn field(&mut self, p: &mut Parser<'_>, key: &str) -> Result<()> {
        match key {
            "dataPoints" | "data_points" => self.data_points = p.msgs_f("dataPoints")?,
            _ => p.skip()?,
        }
        Ok(())
    }
}

impl Decode for Sum {
    fn field(&mut self, p: &mut Parser<'_>, key: &str) -> Result<()> {
        match key {
            "dataPoints" | "data_points" => self.data_points = p.msgs_f("dataPoints")?,
            "aggregationTemporality" | "aggregation_temporality" => {
                self.aggregation_temporality = p.enum_f("aggregationTemporality", temporality)?
            }
            "isMonotonic" | "is_monotonic" => self.is_monotonic = p.bool_f("isMonotonic")?,
            _ => p.skip()?,
        }
        Ok(())
    }
}

impl Decode for Histogram {
    fn field(&mut self, p: &mut Parser<'_>, key: &str) -> Result<()> {
        match key {
            "dataPoints" | "data_points" => self.data_points = p.msgs_f("dataPoints")?,
            "aggregationTemporality" | "aggregation_temporality" => {
                self.aggregation_temporality = p.enum_f("aggregationTemporality", temporality)?
            }
            _ => p.skip()?,
        }
        Ok(())
    }
}

impl Decode for ExponentialHistogram {
    fn field(&mut self, p: &mut Parser<'_>, key: &str) -> Result<()> {
        match key {
            "dataPoints" | "data_points" => self.data_points = p.msgs_f("dataPoints")?,
            "aggregationTemporality" | "aggregation_temporality" => {
                self.aggregation_temporality = p.enum_f("aggregationTemporality", temporality)?
            }
            _ => p.skip()?,
        }
        Ok(())
    }
}

impl Decode for Summary {
    fn field(&mut self, p: &mut Parser<'_>, key: &str) -> Result<()> {
        match key {
            "dataPoints" | "data_points" => self.data_points = p.msgs_f("dataPoints")?,
            _ => p.skip()?,
        }
        Ok(())
    }
}

impl Decode for NumberDataPoint {
    fn field(&mut self, p: &mut Parser<'_>, key: &str) -> Result<()> {
        use number_data_point::Value as V;
        match key {
            "attributes" => self.attributes = p.msgs_f("attributes")?,
            "startTimeUnixNano" | "start_time_unix_nano" => {
                self.start_time_unix_nano = p.u64_f("startTimeUnixNano")?
            }
            "timeUnixNano" | "time_unix_nano" => self.time_unix_nano = p.u64_f("timeUnixNano")?,
            "exemplars" => self.exemplars = p.msgs_f("exemplars")?,
            "flags" => self.flags = p.u32_f("flags")?,
            "asDouble" | "as_double" => {
                if let Some(v) = p.field("asDouble", Parser::f64_val)? {
                    self.value = Some(V::AsDouble(v));
                }
            }
            "asInt" | "as_int" => {
                if let Some(v) = p.field("asInt", |p| p.int_val("int64"))? {
                    self.value = Some(V::AsInt(v));
                }
            }
            _ => p.skip()?,
        }
        Ok(())
    }
}

impl Decode for HistogramDataPoint {
    fn field(&mut self, p: &mut Parser<'_>, key: &str) -> Result<()> {
        match key {
            "attributes" => self.attributes = p.msgs_f("attributes")?,
            "startTimeUnixNano" | "start_time_unix_nano" => {
                self.start_time_unix_nano = p.u64_f("startTimeUnixNano")?
            }
            "timeUnixNano" | "time_unix_nano" => self.time_unix_nano = p.u64_f("timeUnixNano")?,
            "count" => self.count = p.u64_f("count")?,
            // Optional doubles: presence matters, so null stays None.
            "sum" => self.sum = p.field("sum", Parser::f64_val)?,
            "bucketCounts" | "bucket_counts" => {
                self.bucket_counts = p.list_f("bucketCounts", |p| p.int_val("uint64"))?
            }
            "explicitBounds" | "explicit_bounds" => {
                self.explicit_bounds = p.list_f("explicitBounds", Parser::f64_val)?
            }
            "exemplars" => self.exemplars = p.msgs_f("exemplars")?,
            "flags" => self.flags = p.u32_f("flags")?,
            "min" => self.min = p.field("min", Parser::f64_val)?,
            "max" => self.max = p.field("max", Parser::f64_val)?,
            _ => p.skip()?,
        }
        Ok(())
    }
}

impl Decode for ExponentialHistogramDataPoint {
    fn field(&mut self, p: &mut Parser<'_>, key: &str) -> Result<()> {
        match key {
            "attributes" => self.attributes = p.msgs_f("attributes")?,
            "startTimeUnixNano" | "start_time_unix_nano" => {
                self.start_time_unix_nano = p.u64_f("startTimeUnixNano")?
            }
            "timeUnixNano" | "time_unix_nano" => self.time_unix_nano = p.u64_f("timeUnixNano")?,
            "count" => self.count = p.u64_f("count")?,
            "sum" => self.sum = p.field("sum", Parser::f64_val)?,
            "scale" => self.scale = p.i32_f("scale")?,
            "zeroCount" | "zero_count" => self.zero_count = p.u64_f("zeroCount")?,
            "positive" => self.positive = p.msg_f("positive")?,
            "negative" => self.negative = p.msg_f("negative")?,
            "flags" => self.flags = p.u32_f("flags")?,
            "exemplars" => self.exemplars = p.msgs_f("exemplars")?,
            "min" => self.min = p.field("min", Parser::f64_val)?,
            "max" => self.max = p.field("max", Parser::f64_val)?,
            "zeroThreshold" | "zero_threshold" => self.zero_threshold = p.f64_f("zeroThreshold")?,
            _ => p.skip()?,
        }
        Ok(())
    }
}

impl Decode for exponential_histogram_data_point::Buckets {
    fn field(&mut self, p: &mut Parser<'_>, key: &str) -> Result<()> {
        match key {
            "offset" => self.offset = p.i32_f("offset")?,
            "bucketCounts" | "bucket_counts" => {
                self.bucket_counts = p.list_f("bucketCounts", |p| p.int_val("uint64"))?
            }
            _ => p.skip()?,
        }
        Ok(())
    }
}

impl Decode for SummaryDataPoint {
    fn field(&mut self, p: &mut Parser<'_>, key: &str) -> Result<()> {
        match key {
            "attributes" => self.attributes = p.msgs_f("attributes")?,
            "startTimeUnixNano" | "start_time_unix_nano" => {
                self.start_time_unix_nano = p.u64_f("startTimeUnixNano")?
            }
            "timeUnixNano" | "time_unix_nano" => self.time_unix_nano = p.u64_f("timeUnixNano")?,
            "count" => self.count = p.u64_f("count")?,
            "sum" => self.sum = p.f64_f("sum")?,
            "quantileValues" | "quantile_values" => {
                self.quantile_values = p.msgs_f("quantileValues")?
            }
            "flags" => self.flags = p.u32_f("flags")?,
            _ => p.skip()?,
        }
        Ok(())
    }
}

impl Decode for summary_data_point::ValueAtQuantile {
    fn field(&mut self, p: &mut Parser<'_>, key: &str) -> Result<()> {
        match key {
            "quantile" => self.quantile = p.f64_f("quantile")?,
            "value" => self.value = p.f64_f("value")?,
            _ => p.skip()?,
        }
        Ok(())
    }
}

impl Decode for Exemplar {
    fn field(&mut self, p: &mut Parser<'_>, key: &str) -> Result<()> {
        use exemplar::Value as V;
        match key {
            "filteredAttributes" | "filtered_attributes" => {
                self.filtered_attributes = p.msgs_f("filteredAttributes")?
            }
            "timeUnixNano" | "time_unix_nano" => self.time_unix_nano = p.u64_f("timeUnixNano")?,
            "spanId" | "span_id" => self.span_id = p.id_f("spanId", SPAN_ID_LEN)?,
            "traceId" | "trace_id" => self.trace_id = p.id_f("traceId", TRACE_ID_LEN)?,
            "asDouble" | "as_double" => {
                if let Some(v) = p.field("asDouble", Parser::f64_val)? {
                    self.value = Some(V::AsDouble(v));
                }
            }
            "asInt" | "as_int" => {
                if let Some(v) = p.field("asInt", |p| p.int_val("int64"))? {
                    self.value = Some(V::AsInt(v));
                }
            }
            _ => p.skip()?,
        }
        Ok(())
    }
}

impl Decode for ExportMetricsServiceResponse {
    fn field(&mut self, p: &mut Parser<'_>, key: &str) -> Result<()> {
        match key {
            "partialSuccess" | "partial_success" => {
                self.partial_success = p.msg_f("partialSuccess")?
            }
            _ => p.skip()?,
        }
        Ok(())
    }
}

impl Decode for ExportMetricsPartialSuccess {
    fn field(&mut self, p: &mut Parser<'_>, key: &str) -> Result<()> {
        match key {
            "rejectedDataPoints" | "rejected_data_points" => {
                self.rejected_data_points = p.i64_f("rejectedDataPoints")?
            }
            "errorMessage" | "error_message" => self.error_message = p.string_f("errorMessage")?,
            _ => p.skip()?,
        }
        Ok(())
    }
}

// ---- logs -------------------------------------------------------------------

impl Decode for ExportLogsServiceRequest {
    fn field(&mut self, p: &mut Parser<'_>, key: &str) -> Result<()> {
        match key {
            "resourceLogs" | "resource_logs" => self.resource_logs = p.msgs_f("resourceLogs")?,
            _ => p.skip()?,
        }
        Ok(())
    }
}

impl Decode for ResourceLogs {
    fn field(&mut self, p: &mut Parser<'_>, key: &str) -> Result<()> {
        match key {
            "resource" => self.resource = p.msg_f("resource")?,
            "scopeLogs" | "scope_logs" => self.scope_logs = p.msgs_f("scopeLogs")?,
            "schemaUrl" | "schema_url" => self.schema_url = p.string_f("schemaUrl")?,
            _ => p.skip()?,
        }
        Ok(())
    }
}

impl Decode for ScopeLogs {
    fn field(&mut self, p: &mut Parser<'_>, key: &str) -> Result<()> {
        match key {
            "scope" => self.scope = p.msg_f("scope")?,
            "logRecords" | "log_records" => self.log_records = p.msgs_f("logRecords")?,
            "schemaUrl" | "schema_url" => self.schema_url = p.string_f("schemaUrl")?,
            _ => p.skip()?,
        }
        Ok(())
    }
}

impl Decode for LogRecord {
    fn field(&mut self, p: &mut Parser<'_>, key: &str) -> Result<()> {
        match key {
            "timeUnixNano" | "time_unix_nano" => self.time_unix_nano = p.u64_f("timeUnixNano")?,
            "observedTimeUnixNano" | "observed_time_unix_nano" => {
                self.observed_time_unix_nano = p.u64_f("observedTimeUnixNano")?
            }
            "severityNumber" | "severity_number" => {
                self.severity_number = p.enum_f("severityNumber", severity)?
            }
            "severityText" | "severity_text" => self.severity_text = p.string_f("severityText")?,
            "body" => self.body = p.msg_f("body")?,
            "attributes" => self.attributes = p.msgs_f("attributes")?,
            "droppedAttributesCount" | "dropped_attributes_count" => {
                self.dropped_attributes_count = p.u32_f("droppedAttributesCount")?
            }
            "flags" => self.flags = p.u32_f("flags")?,
            "traceId" | "trace_id" => self.trace_id = p.id_f("traceId", TRACE_ID_LEN)?,
            "spanId" | "span_id" => self.span_id = p.id_f("spanId", SPAN_ID_LEN)?,
            "eventName" | "event_name" => self.event_name = p.string_f("eventName")?,
            _ => p.skip()?,
        }
        Ok(())
    }
}

impl Decode for ExportLogsServiceResponse {
    fn field(&mut self, p: &mut Parser<'_>, key: &str) -> Result<()> {
        match key {
            "partialSuccess" | "partial_success" => {
                self.partial_success = p.msg_f("partialSuccess")?
            }
            _ => p.skip()?,
        }
        Ok(())
    }
}

impl Decode for ExportLogsPartialSuccess {
    fn field(&mut self, p: &mut Parser<'_>, key: &str) -> Result<()> {
        match key {
            "rejectedLogRecords" | "rejected_log_records" => {
                self.rejected_log_records = p.i64_f("rejectedLogRecords")?
            }
            "errorMessage" | "error_message" => self.error_message = p.string_f("errorMessage")?,
            _ => p.skip()?,
        }
        Ok(())
    }
}
