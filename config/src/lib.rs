//! confluo's configuration: the OpenTelemetry Collector's YAML shape, loaded
//! with a position on every value, `${env:VAR}` expansion, and validation that
//! reports every problem with `file:line:col`, the YAML path and a hint.
//!
//! # Flow
//!
//! 1. [`load_files`] / [`load_str`] / [`load_strs`] parse each document into a
//!    [`Node`] tree (bounded: [`MAX_FILE_SIZE`], [`MAX_DEPTH`],
//!    [`MAX_ALIAS_EXPANSIONS`]), merge the documents in order (maps merge,
//!    scalars and lists replace), expand `${...}` in every scalar, and split
//!    the top level into a [`RawConfig`].
//! 2. [`validate`] asks a [`Catalog`] (the binary's component registry) about
//!    each component and checks the pipeline graph, returning all errors and
//!    warnings as [`Diagnostics`].
//! 3. Each component deserializes its own [`Node`] with [`Node::deserialize`].
//!
//! # Writing component configs
//!
//! - Put `#[serde(deny_unknown_fields)]` on every config struct so that a
//!   misspelled key is an error (with a "did you mean" hint) rather than a
//!   silently ignored option. Add `#[serde(default)]` where every field has a
//!   default: a bare `otlp:` (null) then means "all defaults".
//! - **Never use `#[serde(flatten)]` in a component config**: serde silently
//!   disables `deny_unknown_fields` on a struct that contains a flattened
//!   field, and the flattened values lose their precise positions. Repeat the
//!   fields, or nest the shared struct under its own key.
//! - Use [`Secret`] for API keys, passwords and tokens, [`GoDuration`] (or
//!   [`duration_serde`]) for durations and [`ByteSize`] for sizes.
//! - Error messages never quote configured values (only key names and ids),
//!   because a value may be a secret. To attach a hint to an error raised in
//!   a custom `Deserialize` impl, use [`error_with_hint`].
//!
//! # Scalars
//!
//! Plain scalars are typed as the YAML 1.2 core schema does (`true`, `12`,
//! `0x1F`, `1.5`, `null`/`~`/empty); quoted and block scalars are always
//! strings. A string field also accepts a plain `123` or `true` as its text,
//! as the Collector does.
//!
//! # Environment variables
//!
//! `${env:VAR}`, `${VAR}` and `${env:VAR:-default}` are expanded in each
//! scalar value after parsing, so an expanded value never becomes YAML
//! structure. An expanded plain scalar is typed like any plain scalar (so
//! `port: ${env:PORT}` fills an integer); in a quoted scalar it stays a string.
//! `$$` is a literal `$`, and a bare `$VAR` is left as it is. A variable that
//! is not set and has no default is an error naming it.

mod de;
mod error;
mod expand;
mod ids;
mod merge;
mod node;
mod service;
mod validate;
mod values;

pub use de::{error_with_hint, DeError, NodeDe};
pub use error::{closest, ConfigError, Diagnostics, Severity, Span};
pub use ids::{ComponentId, ComponentKind, IdError, PipelineId, SignalKind, SignalSet, Spanned};
pub use node::{Node, MAX_ALIAS_EXPANSIONS, MAX_DEPTH, MAX_FILE_SIZE};
pub use service::{
    load_files, load_str, load_strs, parse_raw, LogEncoding, LogLevel, MetricsLevel,
    PipelineConfig, RawConfig, ServiceConfig, TelemetryConfig, TelemetryLogs, TelemetryMetrics,
    DEFAULT_METRICS_ADDRESS,
};
pub use validate::{validate, Catalog};
pub use values::{
    duration_serde, format_go_duration, parse_go_duration, ByteSize, GoDuration, Secret, ValueError,
};
