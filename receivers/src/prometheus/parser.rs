//! The Prometheus text (0.0.4) and OpenMetrics 1.0 exposition parser.
//!
//! Zero-copy over the scraped `&str`: names, label names and values borrow
//! from the input unless they contain escapes. Samples and labels live in two
//! flat vectors of the [`Exposition`] (a sample points at a range of labels,
//! a family at a range of samples), so parsing allocates nothing per sample
//! beyond amortised vector growth.
//!
//! Grouping follows Prometheus's metadata lookup: a sample belongs to the
//! family of the preceding `# TYPE`/`# HELP`/`# UNIT` when its name is the
//! family name or the family name plus a suffix of that type (`_bucket`,
//! `_sum`, `_count`, `_created`, `_total`, `_gsum`, `_gcount`, `_info`, by
//! format); any other sample starts an untyped (`unknown`) family of its own.

use std::borrow::Cow;
use std::ops::Range;

/// Which exposition format a body is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `text/plain; version=0.0.4`.
    Text,
    /// `application/openmetrics-text; version=1.0.0` (or 0.0.1).
    OpenMetrics,
}

impl Format {
    /// The format a `Content-Type` announces. Anything that is not
    /// OpenMetrics is read as text, as Prometheus 2.x does.
    pub fn from_content_type(content_type: Option<&str>) -> Format {
        match content_type {
            Some(ct)
                if ct
                    .trim_start()
                    .get(..28)
                    .is_some_and(|p| p.eq_ignore_ascii_case("application/openmetrics-text")) =>
            {
                Format::OpenMetrics
            }
            _ => Format::Text,
        }
    }
}

/// A family's declared type. Text's `untyped` is [`MetricType::Unknown`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Info,
    StateSet,
    Unknown,
}

impl MetricType {
    fn parse(s: &str, format: Format) -> Option<MetricType> {
        Some(match (s, format) {
            ("counter", _) => MetricType::Counter,
            ("gauge", _) => MetricType::Gauge,
            ("histogram", _) => MetricType::Histogram,
            ("summary", _) => MetricType::Summary,
            ("untyped", Format::Text) => MetricType::Unknown,
            ("unknown", Format::OpenMetrics) => MetricType::Unknown,
            ("gaugehistogram", Format::OpenMetrics) => MetricType::GaugeHistogram,
            ("info", Format::OpenMetrics) => MetricType::Info,
            ("stateset", Format::OpenMetrics) => MetricType::StateSet,
            _ => return None,
        })
    }

    /// The sample-name suffixes a family of this type may use.
    fn suffixes(self, format: Format) -> &'static [&'static str] {
        match (self, format) {
            (MetricType::Histogram, Format::Text) => &["_bucket", "_sum", "_count"],
            (MetricType::Summary, Format::Text) => &["_sum", "_count"],
            (_, Format::Text) => &[],
            (MetricType::Counter, Format::OpenMetrics) => &["_total", "_created"],
            (MetricType::Histogram, Format::OpenMetrics) => {
                &["_bucket", "_sum", "_count", "_created"]
            }
            (MetricType::GaugeHistogram, Format::OpenMetrics) => &["_bucket", "_gsum", "_gcount"],
            (MetricType::Summary, Format::OpenMetrics) => &["_sum", "_count", "_created"],
            (MetricType::Info, Format::OpenMetrics) => &["_info"],
            (_, Format::OpenMetrics) => &[],
        }
    }
}

/// One label (or exemplar label) pair.
#[derive(Clone, Debug, PartialEq)]
pub struct Label<'a> {
    pub name: Cow<'a, str>,
    pub value: Cow<'a, str>,
}

/// An OpenMetrics exemplar: `# {trace_id="..."} 0.5 1700000000.123`.
#[derive(Clone, Debug, PartialEq)]
pub struct Exemplar {
    /// Range into [`Exposition::labels`].
    pub labels: Range<usize>,
    pub value: f64,
    pub timestamp_ms: Option<i64>,
}

/// One sample line.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample<'a> {
    /// The full series name (`http_requests_total`, `latency_bucket`).
    pub name: Cow<'a, str>,
    /// Range into [`Exposition::labels`].
    pub labels: Range<usize>,
    pub value: f64,
    /// Milliseconds since the epoch (OpenMetrics' float seconds converted
    /// as Prometheus does, truncating below the millisecond).
    pub timestamp_ms: Option<i64>,
    pub exemplar: Option<Exemplar>,
    /// 1-based line number in the body.
    pub line: usize,
}

/// A metric family: metadata and its samples.
#[derive(Clone, Debug, PartialEq)]
pub struct Family<'a> {
    pub name: Cow<'a, str>,
    pub kind: MetricType,
    pub help: Option<Cow<'a, str>>,
    pub unit: Option<Cow<'a, str>>,
    /// Range into [`Exposition::samples`].
    pub samples: Range<usize>,
}

/// A parsed body.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Exposition<'a> {
    pub families: Vec<Family<'a>>,
    pub samples: Vec<Sample<'a>>,
    pub labels: Vec<Label<'a>>,
}

impl<'a> Exposition<'a> {
    pub fn samples_of(&self, f: &Family<'a>) -> &[Sample<'a>] {
        &self.samples[f.samples.clone()]
    }

    pub fn labels_of(&self, s: &Sample<'a>) -> &[Label<'a>] {
        &self.labels[s.labels.clone()]
    }

    pub fn exemplar_labels(&self, e: &Exemplar) -> &[Label<'a>] {
        &self.labels[e.labels.clone()]
    }

    /// The value of label `name` of sample `s`.
    pub fn label(&self, s: &Sample<'a>, name: &str) -> Option<&str> {
        self.labels_of(s)
            .iter()
            .find(|l| l.name == name)
            .map(|l| l.value.as_ref())
    }
}

/// Why a body could not be parsed; names the 1-based line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

/// OpenMetrics limits an exemplar's label set to 128 UTF-8 code points.
pub const MAX_EXEMPLAR_LABEL_CHARS: usize = 128;

/// Parses a whole body.
pub fn parse(input: &str, format: Format) -> Result<Exposition<'_>, ParseError> {
    let mut p = Parser {
        format,
        out: Exposition::default(),
        current: None,
        eof: false,
    };
    let mut lineno = 0;
    let mut rest = input;
    while !rest.is_empty() {
        lineno += 1;
        let (line, next) = match rest.find('\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        rest = next;
        if p.eof {
            return Err(err(lineno, "unexpected content after # EOF"));
        }
        p.line(line, lineno)?;
    }
    if format == Format::OpenMetrics && !p.eof {
        return Err(err(
            lineno.max(1),
            "expected # EOF at the end of the exposition",
        ));
    }
    p.close_family();
    Ok(p.out)
}

fn err(line: usize, message: impl Into<String>) -> ParseError {
    ParseError {
        line,
        message: message.into(),
    }
}

struct Parser<'a> {
    format: Format,
    out: Exposition<'a>,
    /// The family samples are being added to, not yet pushed to `out`.
    current: Option<Family<'a>>,
    eof: bool,
}

/// Which metadata line is being read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Meta {
    Help,
    Type,
    Unit,
}

impl<'a> Parser<'a> {
    fn close_family(&mut self) {
        if let Some(mut f) = self.current.take() {
            f.samples.end = self.out.samples.len();
            self.out.families.push(f);
        }
    }

    fn start_family(&mut self, name: Cow<'a, str>) -> &mut Family<'a> {
        self.close_family();
        let start = self.out.samples.len();
        self.current.insert(Family {
            name,
            kind: MetricType::Unknown,
            help: None,
            unit: None,
            samples: start..start,
        })
    }

    fn line(&mut self, line: &'a str, no: usize) -> Result<(), ParseError> {
        let line = match self.format {
            // Text tolerates CRLF bodies; OpenMetrics forbids `\r`.
            Format::Text => line.strip_suffix('\r').unwrap_or(line),
            Format::OpenMetrics => line,
        };
        if let Some(comment) = line.strip_prefix('#') {
            return self.comment(comment, no);
        }
        if line.trim_matches([' ', '\t']).is_empty() {
            return match self.format {
                Format::Text => Ok(()),
                Format::OpenMetrics => Err(err(no, "empty line")),
            };
        }
        self.sample(line, no)
    }

    fn comment(&mut self, c: &'a str, no: usize) -> Result<(), ParseError> {
        let om = self.format == Format::OpenMetrics;
        if om && c == " EOF" {
            self.eof = true;
            return Ok(());
        }
        let body = match self.format {
            Format::Text => c.trim_start_matches([' ', '\t']),
            Format::OpenMetrics => match c.strip_prefix(' ') {
                Some(b) => b,
                None => {
                    return Err(err(
                        no,
                        "invalid comment: expected `# HELP`, `# TYPE`, `# UNIT` or `# EOF`",
                    ))
                }
            },
        };
        let (keyword, rest) = split_token(body);
        let meta = match keyword {
            "HELP" => Meta::Help,
            "TYPE" => Meta::Type,
            "UNIT" if om => Meta::Unit,
            // Any other comment is free text in the text format.
            _ if !om => return Ok(()),
            _ => {
                return Err(err(
                    no,
                    "invalid comment: expected `# HELP`, `# TYPE`, `# UNIT` or `# EOF`",
                ))
            }
        };
        if !om && !rest.starts_with([' ', '\t']) && !rest.is_empty() {
            return Ok(());
        }
        let rest = match self.format {
            Format::Text => rest.trim_start_matches([' ', '\t']),
            Format::OpenMetrics => rest
                .strip_prefix(' ')
                .ok_or_else(|| err(no, "expected a metric name after the keyword"))?,
        };
        let mut cur = Cursor::new(rest, no, self.format);
        let name = cur.metric_name()?;
        let text: &'a str = if cur.at_end() {
            ""
        } else {
            match self.format {
                Format::Text => {
                    if !cur.skip_ws() {
                        return Err(err(no, "expected a space after the metric name"));
                    }
                }
                Format::OpenMetrics => {
                    if !cur.eat(b' ') {
                        return Err(err(no, "expected a space after the metric name"));
                    }
                }
            }
            cur.rest()
        };
        let reuse = matches!(&self.current, Some(f) if f.name == name && f.samples.start == self.out.samples.len());
        if !reuse {
            self.start_family(name.clone());
        }
        let format = self.format;
        let fam = self
            .current
            .as_mut()
            .ok_or_else(|| err(no, "internal: no family"))?;
        match meta {
            Meta::Help => {
                if fam.help.is_some() {
                    return Err(err(
                        no,
                        format!("second HELP line for metric name `{name}`"),
                    ));
                }
                fam.help = Some(unescape_help(text, format));
            }
            Meta::Type => {
                let t = text.trim_end_matches([' ', '\t']);
                let kind = MetricType::parse(t, format)
                    .ok_or_else(|| err(no, format!("invalid metric type `{}`", truncate(t))))?;
                if fam.kind != MetricType::Unknown {
                    return Err(err(
                        no,
                        format!("second TYPE line for metric name `{name}`"),
                    ));
                }
                fam.kind = kind;
            }
            Meta::Unit => {
                if fam.unit.is_some() {
                    return Err(err(
                        no,
                        format!("second UNIT line for metric name `{name}`"),
                    ));
                }
                if !text.is_empty() && !name.ends_with(text) {
                    return Err(err(
                        no,
                        format!(
                            "unit `{}` is not a suffix of metric `{name}`",
                            truncate(text)
                        ),
                    ));
                }
                fam.unit = Some(Cow::Borrowed(text));
            }
        }
        Ok(())
    }

    fn sample(&mut self, line: &'a str, no: usize) -> Result<(), ParseError> {
        let format = self.format;
        let mut cur = Cursor::new(line, no, format);
        let labels_start = self.out.labels.len();
        let mut name: Option<Cow<'a, str>> = None;
        if cur.peek() != Some(b'{') {
            name = Some(cur.metric_name()?);
        }
        if cur.peek() == Some(b'{') {
            cur.pos += 1;
            cur.label_set(&mut self.out.labels, &mut name, true)?;
        }
        let Some(name) = name else {
            return Err(err(no, "a sample needs a metric name"));
        };
        if !cur.skip_sep()? {
            return Err(err(no, "expected a space before the value"));
        }
        let value = cur.float("value")?;
        let mut timestamp_ms = None;
        let mut exemplar = None;
        if !cur.at_end() {
            if !cur.skip_sep()? {
                return Err(err(no, "expected a space after the value"));
            }
            if !cur.at_end() && cur.peek() != Some(b'#') {
                timestamp_ms = Some(cur.timestamp()?);
                if !cur.at_end() && !cur.skip_sep()? {
                    return Err(err(no, "expected a space after the timestamp"));
                }
            }
            if cur.peek() == Some(b'#') {
                if format == Format::Text {
                    return Err(err(no, "exemplars are only valid in OpenMetrics"));
                }
                cur.pos += 1;
                if !cur.eat(b' ') || !cur.eat(b'{') {
                    return Err(err(no, "expected `# {` to start an exemplar"));
                }
                let ex_start = self.out.labels.len();
                let mut no_name = None;
                cur.label_set(&mut self.out.labels, &mut no_name, false)?;
                let chars: usize = self.out.labels[ex_start..]
                    .iter()
                    .map(|l| l.name.chars().count() + l.value.chars().count())
                    .sum();
                if chars > MAX_EXEMPLAR_LABEL_CHARS {
                    return Err(err(
                        no,
                        format!("exemplar labels have {chars} UTF-8 characters, exceeding the limit of {MAX_EXEMPLAR_LABEL_CHARS}"),
                    ));
                }
                if !cur.eat(b' ') {
                    return Err(err(no, "expected a space before the exemplar value"));
                }
                let ex_value = cur.float("exemplar value")?;
                let mut ex_ts = None;
                if !cur.at_end() {
                    if !cur.eat(b' ') {
                        return Err(err(no, "expected a space before the exemplar timestamp"));
                    }
                    ex_ts = Some(cur.timestamp()?);
                }
                exemplar = Some(Exemplar {
                    labels: ex_start..self.out.labels.len(),
                    value: ex_value,
                    timestamp_ms: ex_ts,
                });
            }
            if !cur.at_end() {
                return Err(err(no, "unexpected characters after the sample"));
            }
        }
        let labels = labels_start..self.out.labels.len();
        // Exemplar labels were pushed after the sample's own.
        let labels = match &exemplar {
            Some(e) => labels.start..e.labels.start,
            None => labels,
        };
        let belongs = match &self.current {
            Some(f) => name
                .strip_prefix(f.name.as_ref())
                .is_some_and(|rest| rest.is_empty() || f.kind.suffixes(format).contains(&rest)),
            None => false,
        };
        if !belongs {
            self.start_family(name.clone());
        }
        self.out.samples.push(Sample {
            name,
            labels,
            value,
            timestamp_ms,
            exemplar,
            line: no,
        });
        Ok(())
    }
}

/// Splits off the first space-delimited token.
fn split_token(s: &str) -> (&str, &str) {
    match s.find([' ', '\t']) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    }
}

/// At most 64 characters of a value quoted in an error.
fn truncate(s: &str) -> &str {
    match s.char_indices().nth(64) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn unescape_help(s: &str, format: Format) -> Cow<'_, str> {
    if !s.contains('\\') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') if format == Format::OpenMetrics => out.push('"'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    Cow::Owned(out)
}

fn is_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b == b':'
}

fn is_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b':'
}

struct Cursor<'a> {
    s: &'a str,
    pos: usize,
    line: usize,
    format: Format,
}

impl<'a> Cursor<'a> {
    fn new(s: &'a str, line: usize, format: Format) -> Self {
        Cursor {
            s,
            pos: 0,
            line,
            format,
        }
    }

    fn bytes(&self) -> &'a [u8] {
        self.s.as_bytes()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes().get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn err(&self, message: impl Into<String>) -> ParseError {
        err(self.line, message)
    }

    /// Spaces and tabs (text format); returns whether any were skipped.
    fn skip_ws(&mut self) -> bool {
        let start = self.pos;
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
        self.pos > start
    }

    /// The separator between a sample's fields: any run of blanks in text,
    /// exactly one space in OpenMetrics.
    fn skip_sep(&mut self) -> Result<bool, ParseError> {
        match self.format {
            Format::Text => Ok(self.skip_ws()),
            Format::OpenMetrics => {
                if !self.eat(b' ') {
                    return Ok(false);
                }
                if matches!(self.peek(), Some(b' ' | b'\t')) {
                    return Err(self.err("more than one space between fields"));
                }
                Ok(true)
            }
        }
    }

    fn metric_name(&mut self) -> Result<Cow<'a, str>, ParseError> {
        if self.peek() == Some(b'"') {
            self.pos += 1;
            let n = self.quoted()?;
            if n.is_empty() {
                return Err(self.err("empty quoted metric name"));
            }
            return Ok(n);
        }
        let start = self.pos;
        match self.peek() {
            Some(b) if is_name_start(b) => self.pos += 1,
            _ => return Err(self.err("invalid metric name")),
        }
        while self.peek().is_some_and(is_name_char) {
            self.pos += 1;
        }
        Ok(Cow::Borrowed(&self.s[start..self.pos]))
    }

    fn label_name(&mut self) -> Result<Cow<'a, str>, ParseError> {
        if self.peek() == Some(b'"') {
            self.pos += 1;
            return self.quoted();
        }
        let start = self.pos;
        match self.peek() {
            Some(b) if b.is_ascii_alphabetic() || b == b'_' => self.pos += 1,
            _ => return Err(self.err("invalid label name")),
        }
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            self.pos += 1;
        }
        Ok(Cow::Borrowed(&self.s[start..self.pos]))
    }

    /// Reads up to the closing quote (the opening one is consumed), handling
    /// `\\`, `\"` and `\n`; other escapes are kept as written, as Prometheus does.
    fn quoted(&mut self) -> Result<Cow<'a, str>, ParseError> {
        let bytes = self.bytes();
        let start = self.pos;
        let mut i = start;
        let mut escaped = false;
        loop {
            match bytes.get(i) {
                None => return Err(self.err("unterminated quoted string")),
                Some(b'"') => break,
                Some(b'\\') => {
                    escaped = true;
                    i += 2;
                }
                Some(_) => i += 1,
            }
        }
        let raw = &self.s[start..i.min(self.s.len())];
        self.pos = i + 1;
        if !escaped {
            return Ok(Cow::Borrowed(raw));
        }
        let mut out = String::with_capacity(raw.len());
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('\\') => out.push('\\'),
                Some('"') => out.push('"'),
                Some('n') => out.push('\n'),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            }
        }
        Ok(Cow::Owned(out))
    }

    /// `{` already consumed. Pushes pairs until `}`. A lone quoted string
    /// (UTF-8 metric name syntax) sets `name` when `allow_name`.
    fn label_set(
        &mut self,
        labels: &mut Vec<Label<'a>>,
        name: &mut Option<Cow<'a, str>>,
        allow_name: bool,
    ) -> Result<(), ParseError> {
        let text = self.format == Format::Text;
        let set_start = labels.len();
        let mut after_comma = false;
        loop {
            if text {
                self.skip_ws();
            }
            if self.eat(b'}') {
                if after_comma && !text {
                    return Err(self.err("trailing comma in label set"));
                }
                return Ok(());
            }
            let quoted = self.peek() == Some(b'"');
            let lname = self.label_name()?;
            if text {
                self.skip_ws();
            }
            if quoted && allow_name && name.is_none() && matches!(self.peek(), Some(b',' | b'}')) {
                *name = Some(lname);
            } else {
                if !self.eat(b'=') {
                    return Err(self.err("expected `=` after a label name"));
                }
                if text {
                    self.skip_ws();
                }
                if !self.eat(b'"') {
                    return Err(self.err("expected a quoted label value"));
                }
                let value = self.quoted()?;
                if labels[set_start..].iter().any(|l| l.name == lname) {
                    return Err(self.err(format!("duplicate label name `{}`", truncate(&lname))));
                }
                labels.push(Label { name: lname, value });
            }
            if text {
                self.skip_ws();
            }
            if self.eat(b',') {
                after_comma = true;
                continue;
            }
            if self.eat(b'}') {
                return Ok(());
            }
            return Err(self.err("expected `,` or `}` in label set"));
        }
    }

    fn token(&mut self) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(|b| b != b' ' && b != b'\t') {
            self.pos += 1;
        }
        &self.s[start..self.pos]
    }

    fn float(&mut self, what: &str) -> Result<f64, ParseError> {
        let t = self.token();
        parse_float(t).ok_or_else(|| self.err(format!("invalid {what} `{}`", truncate(t))))
    }

    fn timestamp(&mut self) -> Result<i64, ParseError> {
        let t = self.token();
        match self.format {
            Format::Text => t
                .parse::<i64>()
                .map_err(|_| self.err(format!("invalid timestamp `{}`", truncate(t)))),
            Format::OpenMetrics => match parse_float(t) {
                Some(v) if v.is_finite() => Ok((v * 1000.0) as i64),
                _ => Err(self.err(format!("invalid timestamp `{}`", truncate(t)))),
            },
        }
    }
}

/// Go's `strconv.ParseFloat` for the forms expositions use: decimal and
/// exponent notation, `NaN`, `±Inf`.
fn parse_float(t: &str) -> Option<f64> {
    if t.is_empty() {
        return None;
    }
    // Rust also accepts "infinity"/"inf" in any case, as Go does.
    t.parse::<f64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(e: &Exposition<'_>) -> Vec<(String, MetricType, usize)> {
        e.families
            .iter()
            .map(|f| (f.name.to_string(), f.kind, f.samples.len()))
            .collect()
    }

    #[test]
    fn text_full() {
        let body = "# HELP http_requests_total The total number of HTTP requests.\n\
# TYPE http_requests_total counter\n\
http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n\
http_requests_total{method=\"post\",code=\"400\"}    3 1395066363000\n\
\n\
# Escaping in label values:\n\
msdos_file_access_time_seconds{path=\"C:\\\\DIR\\\\FILE.TXT\",error=\"Cannot find file:\\n\\\"FILE.TXT\\\"\"} 1.458255915e9\n\
# Minimalistic line:\n\
metric_without_timestamp_and_labels 12.47\n\
# A weird metric from before the epoch:\n\
something_weird{problem=\"division by zero\"} +Inf -3982045\n\
# A histogram, which has a pretty complex representation in the text format:\n\
# HELP http_request_duration_seconds A histogram of the request duration.\n\
# TYPE http_request_duration_seconds histogram\n\
http_request_duration_seconds_bucket{le=\"0.05\"} 24054\n\
http_request_duration_seconds_bucket{le=\"0.1\"} 33444\n\
http_request_duration_seconds_bucket{le=\"+Inf\"} 144320\n\
http_request_duration_seconds_sum 53423\n\
http_request_duration_seconds_count 144320\n\
# HELP rpc_duration_seconds A summary of the RPC duration in seconds.\n\
# TYPE rpc_duration_seconds summary\n\
rpc_duration_seconds{quantile=\"0.01\"} 3102\n\
rpc_duration_seconds{quantile=\"0.5\"} 4773\n\
rpc_duration_seconds_sum 1.7560473e+07\n\
rpc_duration_seconds_count 2693\n\
nan_metric NaN\n";
        let e = parse(body, Format::Text).unwrap();
        assert_eq!(
            names(&e),
            vec![
                ("http_requests_total".into(), MetricType::Counter, 2),
                (
                    "msdos_file_access_time_seconds".into(),
                    MetricType::Unknown,
                    1
                ),
                (
                    "metric_without_timestamp_and_labels".into(),
                    MetricType::Unknown,
                    1
                ),
                ("something_weird".into(), MetricType::Unknown, 1),
                (
                    "http_request_duration_seconds".into(),
                    MetricType::Histogram,
                    5
                ),
                ("rpc_duration_seconds".into(), MetricType::Summary, 4),
                ("nan_metric".into(), MetricType::Unknown, 1),
            ]
        );
        let f = &e.families[0];
        assert_eq!(
            f.help.as_deref(),
            Some("The total number of HTTP requests.")
        );
        let s = &e.samples_of(f)[1];
        assert_eq!(s.value, 3.0);
        assert_eq!(s.timestamp_ms, Some(1395066363000));
        assert_eq!(e.label(s, "code"), Some("400"));
        let ms = &e.samples_of(&e.families[1])[0];
        assert_eq!(e.label(ms, "path"), Some("C:\\DIR\\FILE.TXT"));
        assert_eq!(
            e.label(ms, "error"),
            Some("Cannot find file:\n\"FILE.TXT\"")
        );
        let w = &e.samples_of(&e.families[3])[0];
        assert_eq!(w.value, f64::INFINITY);
        assert_eq!(w.timestamp_ms, Some(-3982045));
        assert!(e.samples_of(&e.families[6])[0].value.is_nan());
        assert_eq!(e.samples[1].line, 4);
    }

    #[test]
    fn text_created_is_its_own_gauge_family() {
        // prometheus_client's text output.
        let body = "# HELP c_total help\n# TYPE c_total counter\nc_total 3.0\n# HELP c_created help\n# TYPE c_created gauge\nc_created 1.7e9\n";
        let e = parse(body, Format::Text).unwrap();
        assert_eq!(
            names(&e),
            vec![
                ("c_total".into(), MetricType::Counter, 1),
                ("c_created".into(), MetricType::Gauge, 1)
            ]
        );
    }

    #[test]
    fn openmetrics_full() {
        let body = "# TYPE acme_http_router_request_seconds summary\n\
# UNIT acme_http_router_request_seconds seconds\n\
# HELP acme_http_router_request_seconds Latency though all of ACME's HTTP request router.\n\
acme_http_router_request_seconds_sum{path=\"/api/v1\",method=\"GET\"} 9036.32\n\
acme_http_router_request_seconds_count{path=\"/api/v1\",method=\"GET\"} 807283.0\n\
acme_http_router_request_seconds_created{path=\"/api/v1\",method=\"GET\"} 1605281325.0\n\
# TYPE foo counter\n\
foo_total 17.0 1520879607.789 # {trace_id=\"KOO5S4vxi0o\"} 0.67\n\
foo_created 1520430000.123\n\
# TYPE hist histogram\n\
hist_bucket{le=\"0.01\"} 0\n\
hist_bucket{le=\"+Inf\"} 17 # {trace_id=\"oHg5SJYRHA0\",span_id=\"09\"} 9.8 1520879607.789\n\
hist_count 17\n\
hist_sum 324789.3\n\
hist_created 1520430000.123\n\
# TYPE gh gaugehistogram\n\
gh_bucket{le=\"1\"} 2\n\
gh_bucket{le=\"+Inf\"} 3\n\
gh_gcount 3\n\
gh_gsum 2\n\
# TYPE build info\n\
build_info{version=\"1.2\"} 1\n\
# TYPE feature stateset\n\
feature{feature=\"a\"} 1\n\
feature{feature=\"b\"} 0\n\
# TYPE u unknown\n\
u 1\n\
no_meta -Inf\n\
# EOF\n";
        let e = parse(body, Format::OpenMetrics).unwrap();
        assert_eq!(
            names(&e),
            vec![
                (
                    "acme_http_router_request_seconds".into(),
                    MetricType::Summary,
                    3
                ),
                ("foo".into(), MetricType::Counter, 2),
                ("hist".into(), MetricType::Histogram, 5),
                ("gh".into(), MetricType::GaugeHistogram, 4),
                ("build".into(), MetricType::Info, 1),
                ("feature".into(), MetricType::StateSet, 2),
                ("u".into(), MetricType::Unknown, 1),
                ("no_meta".into(), MetricType::Unknown, 1),
            ]
        );
        assert_eq!(e.families[0].unit.as_deref(), Some("seconds"));
        let foo = &e.samples_of(&e.families[1])[0];
        assert_eq!(foo.timestamp_ms, Some(1520879607789));
        let ex = foo.exemplar.as_ref().unwrap();
        assert_eq!(ex.value, 0.67);
        assert_eq!(ex.timestamp_ms, None);
        assert_eq!(e.exemplar_labels(ex)[0].value, "KOO5S4vxi0o");
        assert!(e.labels_of(foo).is_empty());
        let inf = &e.samples_of(&e.families[2])[1];
        assert_eq!(e.label(inf, "le"), Some("+Inf"));
        assert_eq!(e.labels_of(inf).len(), 1);
        let ex = inf.exemplar.as_ref().unwrap();
        assert_eq!(e.exemplar_labels(ex).len(), 2);
        assert_eq!(ex.timestamp_ms, Some(1520879607789));
    }

    #[test]
    fn openmetrics_errors() {
        let cases: &[(&str, usize, &str)] = &[
            ("a 1\n", 1, "expected # EOF"),
            ("a 1\n# EOF\nb 2\n", 3, "after # EOF"),
            ("a 1\n\n# EOF\n", 2, "empty line"),
            ("#comment\n# EOF\n", 1, "invalid comment"),
            ("# FOO a b\n# EOF\n", 1, "invalid comment"),
            ("# TYPE a untyped\n# EOF\n", 1, "invalid metric type"),
            (
                "# TYPE a_seconds gauge\n# UNIT a_seconds bytes\n# EOF\n",
                2,
                "not a suffix",
            ),
            ("a  1\n# EOF\n", 1, "more than one space"),
            ("a 1 # {x=\"y\"} 1\n# EOF\n", 1, ""),
            ("a{b=\"c\",} 1\n# EOF\n", 1, "trailing comma"),
            ("a 1 # {x=\"y\"}\n# EOF\n", 1, "exemplar value"),
            ("a 1 abc\n# EOF\n", 1, "invalid timestamp"),
        ];
        for (body, line, msg) in cases {
            match parse(body, Format::OpenMetrics) {
                Err(e) => {
                    assert_eq!(e.line, *line, "{body:?}: {e}");
                    assert!(e.message.contains(msg), "{body:?}: {e}");
                }
                Ok(_) if msg.is_empty() => {}
                Ok(x) => panic!("{body:?} parsed: {x:?}"),
            }
        }
        let long = format!("a 1 # {{x=\"{}\"}} 1\n# EOF\n", "y".repeat(128));
        assert!(parse(&long, Format::OpenMetrics).is_err());
        let ok = format!("a 1 # {{x=\"{}\"}} 1\n# EOF\n", "y".repeat(127));
        assert!(parse(&ok, Format::OpenMetrics).is_ok());
    }

    #[test]
    fn text_errors_name_lines() {
        let cases: &[(&str, usize, &str)] = &[
            ("a 1\nb{c=\"d} 2\n", 2, "unterminated"),
            ("a 1\nb 1.5.5\n", 2, "invalid value"),
            ("a 1 1.5\n", 1, "invalid timestamp"),
            ("a{b c} 1\n", 1, "expected `=`"),
            ("# TYPE a bogus\n", 1, "invalid metric type"),
            ("# TYPE a gauge\n# TYPE a counter\n", 2, "second TYPE"),
            ("a{x=\"1\",x=\"2\"} 1\n", 1, "duplicate label"),
            ("1a 1\n", 1, "invalid metric name"),
            ("a\n", 1, "expected a space"),
            ("a 1 # {x=\"y\"} 1\n", 1, "only valid in OpenMetrics"),
            ("a 1 2 3\n", 1, "unexpected characters"),
        ];
        for (body, line, msg) in cases {
            let e = parse(body, Format::Text).unwrap_err();
            assert_eq!(e.line, *line, "{body:?}: {e}");
            assert!(e.message.contains(msg), "{body:?}: {e}");
        }
    }

    #[test]
    fn text_leniency() {
        let body = "#no space comment\n# TYPE a gauge\r\na{ b = \"c\" , } \t 1 \t 5 \r\n# EOF\n";
        let e = parse(body, Format::Text).unwrap();
        assert_eq!(e.samples.len(), 1);
        assert_eq!(e.samples[0].timestamp_ms, Some(5));
        assert_eq!(e.label(&e.samples[0], "b"), Some("c"));
        // No trailing newline is accepted.
        assert_eq!(parse("a 1", Format::Text).unwrap().samples.len(), 1);
    }

    #[test]
    fn utf8_quoted_names() {
        let body = "{\"my.metric\",\"a.b\"=\"v\"} 1\n";
        let e = parse(body, Format::Text).unwrap();
        assert_eq!(e.samples[0].name, "my.metric");
        assert_eq!(e.label(&e.samples[0], "a.b"), Some("v"));
    }

    #[test]
    fn help_escapes() {
        let e = parse("# HELP a x\\\\y\\nz \\\"q\\\"\na 1\n", Format::Text).unwrap();
        assert_eq!(e.families[0].help.as_deref(), Some("x\\y\nz \\\"q\\\""));
        let e = parse("# HELP a x\\\"q\\\"\na 1\n# EOF\n", Format::OpenMetrics).unwrap();
        assert_eq!(e.families[0].help.as_deref(), Some("x\"q\""));
    }

    #[test]
    fn content_type() {
        assert_eq!(
            Format::from_content_type(Some(
                "application/openmetrics-text; version=1.0.0; charset=utf-8"
            )),
            Format::OpenMetrics
        );
        assert_eq!(
            Format::from_content_type(Some("text/plain; version=0.0.4")),
            Format::Text
        );
        assert_eq!(Format::from_content_type(None), Format::Text);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,200}") {
            let _ = parse(&s, Format::Text);
            let _ = parse(&s, Format::OpenMetrics);
        }

        #[test]
        fn roundtrip_label_values(v in "[ -~\\n\\\\\"é]{0,20}", x in -1e9f64..1e9) {
            let esc = v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
            let body = format!("m{{l=\"{esc}\"}} {x}\n");
            let e = parse(&body, Format::Text).unwrap();
            proptest::prop_assert_eq!(e.label(&e.samples[0], "l"), Some(v.as_str()));
            proptest::prop_assert_eq!(e.samples[0].value, x);
        }
    }
}
