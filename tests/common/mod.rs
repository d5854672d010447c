//! Shared harness for confluo's end-to-end tests (`tests/*.rs`, each with
//! `mod common;`).
//!
//! - [`Confluo`] runs the built binary with a config on loopback ports and stops
//!   it with SIGTERM when dropped;
//! - raw HTTP/1.1 over `std::net::TcpStream` ([`http_post`], [`http_get`]);
//! - Prometheus text parsing ([`Confluo::metric_value`], [`parse_metric`]);
//! - [`wait_until`] for eventual conditions (no fixed sleeps);
//! - the file exporter's OTLP/JSON lines ([`read_file_exporter`], [`spans_in`], …);
//! - the SDK senders in `tests/e2e` ([`run_python`], [`run_node`]), which need
//!   `scripts/test` to have installed them (it exports `CONFLUO_PYTHON` and
//!   `CONFLUO_JS_DIR`).
//! - the contract servers in `tests/e2e/python` ([`ContractServer`],
//!   [`read_jsonl`] for what they record) and the config of an `otlp` →
//!   exporter collector ([`otlp_to_exporter_config`], [`start_otlp_to_exporter`]).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Path of the binary under test, built by cargo for integration tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_confluo");

/// How long [`Confluo::start`] waits for `/health/ready`.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a stop waits after SIGTERM before SIGKILL.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// A port that was free a moment ago on 127.0.0.1 (the OS picks it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// Whether something listens on (or holds) this loopback port right now.
pub fn port_in_use(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_err()
}

/// Polls `cond` every 50 ms until it returns true or `timeout` passes.
/// Returns whether it became true (use with `assert!`, giving a message).
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ------------------------------------------------------------------ process

/// A running `confluo` process. SIGTERM (then SIGKILL after 5 s) on drop.
pub struct Confluo {
    child: Option<Child>,
    /// Temporary folder holding the config, stdout/stderr captures and any
    /// files the config writes (`{{DIR}}` in the config expands to it).
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    /// `host:port` of `service.telemetry.metrics.address`.
    pub telemetry_addr: String,
    pub stdout_path: PathBuf,
    pub stderr_path: PathBuf,
}

impl Confluo {
    /// Writes `config_yaml` (after replacing `{{DIR}}` with the temp folder)
    /// to a temp file, runs `confluo run --config FILE` and waits until
    /// `/health/ready` answers 200 on `service.telemetry.metrics.address`,
    /// which the config must set (use 127.0.0.1 and [`free_port`]).
    pub fn start(config_yaml: &str) -> Confluo {
        Self::start_in(tempfile::tempdir().expect("tempdir"), config_yaml)
    }

    /// Like [`Confluo::start`], in a given folder (so that two runs can share
    /// files, e.g. a restarted gateway).
    pub fn start_in(dir: tempfile::TempDir, config_yaml: &str) -> Confluo {
        let yaml = config_yaml.replace("{{DIR}}", &dir.path().display().to_string());
        let telemetry_addr = telemetry_address(&yaml).unwrap_or_else(|| {
            panic!("the test config must set service.telemetry.metrics.address:\n{yaml}")
        });
        let config_path = unique_path(dir.path(), "config", "yaml");
        fs::write(&config_path, &yaml).expect("write config");
        let args = vec![
            "run".to_string(),
            "--config".to_string(),
            config_path.display().to_string(),
        ];
        let mut c = Self::spawn_in(dir, &args, &telemetry_addr);
        c.config_path = config_path;
        c.wait_ready();
        c
    }

    /// Spawns `confluo ARGS…` (stdout/stderr to files in `dir`) without
    /// waiting for anything. `telemetry_addr` is where [`Confluo::wait_ready`]
    /// and [`Confluo::metrics`] look.
    pub fn spawn_in(dir: tempfile::TempDir, args: &[String], telemetry_addr: &str) -> Confluo {
        let stdout_path = unique_path(dir.path(), "stdout", "log");
        let stderr_path = unique_path(dir.path(), "stderr", "log");
        let child = Command::new(BIN)
            .args(args)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(fs::File::create(&stdout_path).expect("create stdout capture"))
            .stderr(fs::File::create(&stderr_path).expect("create stderr capture"))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {BIN}: {e}"));
        Confluo {
            child: Some(child),
            dir,
            config_path: PathBuf::new(),
            telemetry_addr: telemetry_addr.to_string(),
            stdout_path,
            stderr_path,
        }
    }

    /// Polls `/health/ready` every 50 ms until 200 (20 s deadline). Panics
    /// with the captured stderr if the process exits or the deadline passes.
    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut last: String;
        loop {
            if let Some(status) = self.try_wait() {
                panic!(
                    "confluo exited with {status} before /health/ready answered 200\n--- config {} ---\n{}\n--- stderr ---\n{}",
                    self.config_path.display(),
                    fs::read_to_string(&self.config_path).unwrap_or_default(),
                    self.stderr()
                );
            }
            match http_get(&self.telemetry_addr, "/health/ready") {
                Ok(r) if r.status == 200 => return,
                Ok(r) => last = format!("HTTP {} {}", r.status, r.text()),
                Err(e) => last = e.to_string(),
            }
            if Instant::now() >= deadline {
                panic!(
                    "confluo was not ready within {READY_TIMEOUT:?} (http://{}/health/ready: {last})\n--- stderr ---\n{}",
                    self.telemetry_addr,
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("process already stopped").id()
    }

    /// `Some(status)` once the process has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().expect("try_wait"))
    }

    /// Panics (with stderr) unless the process is still running.
    pub fn assert_alive(&mut self, context: &str) {
        if let Some(status) = self.try_wait() {
            panic!(
                "confluo died ({status}) {context}\n--- stderr ---\n{}",
                self.stderr()
            );
        }
    }

    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    pub fn stdout(&self) -> String {
        fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }

    /// A path inside the temp folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// SIGTERM, wait up to 5 s, then SIGKILL. Returns the exit status.
    pub fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("process already stopped");
        terminate(&mut child)
    }

    /// Stops the process and hands back its folder (to restart in it).
    pub fn stop_keep_dir(mut self) -> (ExitStatus, tempfile::TempDir) {
        let status = self.stop();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"));
        (status, dir)
    }

    /// `GET /metrics` on the telemetry address (Prometheus text).
    pub fn metrics(&self) -> String {
        match http_get(&self.telemetry_addr, "/metrics") {
            Ok(r) if r.status == 200 => r.text(),
            Ok(r) => panic!("GET /metrics: HTTP {}: {}", r.status, r.text()),
            Err(e) => panic!("GET http://{}/metrics: {e}", self.telemetry_addr),
        }
    }

    /// The value of a metric series; see [`parse_metric`].
    pub fn metric_value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        parse_metric(&self.metrics(), name, labels)
    }

    /// Like [`Confluo::metric_value`], 0 when absent.
    pub fn metric_or_zero(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.metric_value(name, labels).unwrap_or(0.0)
    }

    /// Resident set size of the process in KiB (`VmRSS` of /proc/PID/status).
    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.pid())
    }
}

impl Drop for Confluo {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child);
        }
        if std::thread::panicking() {
            // Keep the evidence next to the panic message.
            let err = self.stderr();
            let tail: String = tail_lines(&err, 60);
            eprintln!(
                "--- confluo stderr (last 60 lines, {}) ---\n{tail}",
                self.stderr_path.display()
            );
        }
    }
}

fn terminate(child: &mut Child) -> ExitStatus {
    if let Ok(Some(status)) = child.try_wait() {
        return status;
    }
    // `kill` through sh: its builtin exists even where procps is not installed.
    let _ = Command::new("sh")
        .args(["-c", &format!("kill -TERM {}", child.id())])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let deadline = Instant::now() + STOP_TIMEOUT;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    eprintln!(
        "confluo (pid {}) did not exit within {STOP_TIMEOUT:?} of SIGTERM: SIGKILL",
        child.id()
    );
    let _ = child.kill();
    child.wait().expect("wait after SIGKILL")
}

fn tail_lines(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn unique_path(dir: &Path, stem: &str, ext: &str) -> PathBuf {
    let mut p = dir.join(format!("{stem}.{ext}"));
    let mut i = 1;
    while p.exists() {
        p = dir.join(format!("{stem}-{i}.{ext}"));
        i += 1;
    }
    p
}

/// Finds `address:` under `service.telemetry.metrics` in a block-style YAML.
pub fn telemetry_address(yaml: &str) -> Option<String> {
    let mut in_metrics: Option<usize> = None;
    for line in yaml.lines() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = line.len() - trimmed.len();
        if let Some(mi) = in_metrics {
            if indent <= mi {
                in_metrics = None;
            } else if let Some(v) = trimmed.strip_prefix("address:") {
                let v = v.split('#').next().unwrap_or("").trim().trim_matches('"');
                return Some(v.to_string());
            }
        }
        if trimmed.starts_with("metrics:") && trimmed.trim_end() == "metrics:" {
            in_metrics = Some(indent);
        }
    }
    None
}

/// Resident set size of a process in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/status: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in /proc/{pid}/status"))
}

/// Runs `confluo ARGS…` to completion (for `validate`, `components`, …).
pub fn confluo_cmd(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {BIN}: {e}"))
}

// ------------------------------------------------------------------ HTTP

#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    /// Header names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP/1.1 request (`Connection: close`) over a fresh TcpStream.
/// `Host` and `Content-Length` are added. A response that arrives before the
/// server closes (e.g. 413 while the body is still being written) is returned
/// even if writing the rest of the body fails.
pub fn http_request(
    method: &str,
    addr: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<HttpResponse> {
    // Try every address `localhost` resolves to (127.0.0.1 and ::1).
    let socks: Vec<SocketAddr> = addr.to_socket_addrs()?.collect();
    let mut last_err = io::Error::new(io::ErrorKind::InvalidInput, format!("bad address {addr}"));
    let mut stream = None;
    for sock in &socks {
        match TcpStream::connect_timeout(sock, Duration::from_secs(5)) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last_err = e,
        }
    }
    let mut stream = stream.ok_or(last_err)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.set_write_timeout(Some(Duration::from_secs(30)))?;
    stream.set_nodelay(true)?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if method != "GET" || !body.is_empty() {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let write_result = stream
        .write_all(head.as_bytes())
        .and_then(|_| stream.write_all(body))
        .and_then(|_| stream.flush());

    let mut raw = Vec::new();
    let read_result = read_until_close(&mut stream, &mut raw);
    match parse_response(&raw) {
        Some(resp) => Ok(resp),
        None => {
            write_result?;
            read_result?;
            Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "unparseable HTTP response ({} bytes): {:?}",
                    raw.len(),
                    String::from_utf8_lossy(&raw[..raw.len().min(200)])
                ),
            ))
        }
    }
}

fn read_until_close(stream: &mut TcpStream, raw: &mut Vec<u8>) -> io::Result<()> {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

pub fn parse_response(raw: &[u8]) -> Option<HttpResponse> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let status: u16 = status_line.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let rest = &raw[end + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else if let Some(len) = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
    {
        rest[..len.min(rest.len())].to_vec()
    } else {
        rest.to_vec()
    };
    Some(HttpResponse {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size_str = String::from_utf8_lossy(&data[..eol]);
        let size =
            usize::from_str_radix(size_str.split(';').next().unwrap_or("").trim(), 16).unwrap_or(0);
        data = &data[eol + 2..];
        if size == 0 || data.len() < size {
            out.extend_from_slice(&data[..size.min(data.len())]);
            break;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[(size + 2).min(data.len())..];
    }
    out
}

/// `POST` with raw headers and body; panics on a transport error.
/// Returns (status, headers, body).
pub fn http_post(
    addr: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let r = http_request("POST", addr, path, headers, body)
        .unwrap_or_else(|e| panic!("POST http://{addr}{path}: {e}"));
    (r.status, r.headers, r.body)
}

/// `GET` (errors returned, for polling).
pub fn http_get(addr: &str, path: &str) -> io::Result<HttpResponse> {
    http_request("GET", addr, path, &[], &[])
}

// ------------------------------------------------------------------ Prometheus text

/// Sums the samples of metric `name` whose labels include every pair in
/// `labels` (other labels may be present). `None` when no series matches.
pub fn parse_metric(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut found = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((series_name, series_labels, value)) = parse_sample(line) else {
            continue;
        };
        if series_name != name {
            continue;
        }
        if labels
            .iter()
            .all(|(k, v)| series_labels.iter().any(|(sk, sv)| sk == k && sv == v))
        {
            *found.get_or_insert(0.0) += value;
        }
    }
    found
}

/// One Prometheus sample: name, labels, value.
pub type Sample = (String, Vec<(String, String)>, f64);

/// `name{a="b",c="d"} 1.5 [timestamp]` → (name, labels, value).
pub fn parse_sample(line: &str) -> Option<Sample> {
    let (name, rest) = match line.find(['{', ' ', '\t']) {
        Some(i) => (&line[..i], &line[i..]),
        None => return None,
    };
    let mut labels = Vec::new();
    let mut rest = rest;
    if let Some(r) = rest.strip_prefix('{') {
        let mut chars = r.char_indices().peekable();
        let mut end = None;
        loop {
            // skip separators
            while let Some(&(_, c)) = chars.peek() {
                if c == ',' || c == ' ' {
                    chars.next();
                } else {
                    break;
                }
            }
            let Some(&(i, c)) = chars.peek() else { break };
            if c == '}' {
                end = Some(i + 1);
                break;
            }
            let mut key = String::new();
            while let Some(&(_, c)) = chars.peek() {
                if c == '=' {
                    break;
                }
                key.push(c);
                chars.next();
            }
            chars.next(); // '='
            if chars.next().map(|(_, c)| c) != Some('"') {
                return None;
            }
            let mut val = String::new();
            loop {
                match chars.next()? {
                    (_, '\\') => match chars.next()?.1 {
                        'n' => val.push('\n'),
                        c => val.push(c),
                    },
                    (_, '"') => break,
                    (_, c) => val.push(c),
                }
            }
            labels.push((key.trim().to_string(), val));
        }
        rest = &r[end?..];
    }
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some((name.to_string(), labels, value))
}

// ------------------------------------------------------------------ file exporter

/// Every complete line of the file exporter's output, parsed as JSON.
/// A missing file is empty; a last line without '\n' that does not parse yet
/// (still being written) is skipped; any other bad line panics.
pub fn read_file_exporter(path: impl AsRef<Path>) -> Vec<Value> {
    let path = path.as_ref();
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => panic!("read {}: {e}", path.display()),
    };
    let complete = text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(line) {
            Ok(v) => out.push(v),
            Err(_) if i + 1 == lines.len() && !complete => {}
            Err(e) => panic!(
                "{}:{}: not JSON ({e}): {}",
                path.display(),
                i + 1,
                &line[..line.len().min(300)]
            ),
        }
    }
    out
}

/// Rows of several files, concatenated.
pub fn read_file_exporters(paths: &[PathBuf]) -> Vec<Value> {
    paths.iter().flat_map(read_file_exporter).collect()
}

/// An item (span, log record or metric) with its resource and scope.
#[derive(Debug, Clone)]
pub struct Item {
    /// Resource attributes as key → OTLP/JSON AnyValue.
    pub resource: BTreeMap<String, Value>,
    pub scope_name: String,
    pub value: Value,
}

fn items_in(rows: &[Value], resource_key: &str, scope_key: &str, items_key: &str) -> Vec<Item> {
    let mut out = Vec::new();
    for row in rows {
        for rs in row
            .get(resource_key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let resource = attr_map(&rs["resource"]["attributes"]);
            for ss in rs
                .get(scope_key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let scope_name = ss["scope"]["name"].as_str().unwrap_or("").to_string();
                for it in ss
                    .get(items_key)
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    out.push(Item {
                        resource: resource.clone(),
                        scope_name: scope_name.clone(),
                        value: it.clone(),
                    });
                }
            }
        }
    }
    out
}

/// Every span in the file exporter's rows.
pub fn spans_in(rows: &[Value]) -> Vec<Item> {
    items_in(rows, "resourceSpans", "scopeSpans", "spans")
}

/// Every log record in the file exporter's rows.
pub fn logs_in(rows: &[Value]) -> Vec<Item> {
    items_in(rows, "resourceLogs", "scopeLogs", "logRecords")
}

/// Every metric (not data point) in the file exporter's rows.
pub fn metrics_in(rows: &[Value]) -> Vec<Item> {
    items_in(rows, "resourceMetrics", "scopeMetrics", "metrics")
}

/// A metric's data points with the metric's kind ("sum", "gauge",
/// "histogram", …) and its JSON object for that kind.
pub fn data_points(metric: &Value) -> (String, &Value, Vec<&Value>) {
    for kind in [
        "sum",
        "gauge",
        "histogram",
        "exponentialHistogram",
        "summary",
    ] {
        if let Some(body) = metric.get(kind) {
            let points = body
                .get("dataPoints")
                .and_then(Value::as_array)
                .map(|a| a.iter().collect())
                .unwrap_or_default();
            return (kind.to_string(), body, points);
        }
    }
    panic!("metric without a known data kind: {metric}");
}

/// `[{key, value}]` → key → AnyValue.
pub fn attr_map(attrs: &Value) -> BTreeMap<String, Value> {
    attrs
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|kv| {
            Some((
                kv.get("key")?.as_str()?.to_string(),
                kv.get("value")?.clone(),
            ))
        })
        .collect()
}

/// A JSON object (as the senders print) → BTreeMap.
pub fn obj_map(obj: &Value) -> BTreeMap<String, Value> {
    obj.as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

/// An OTLP/JSON enum (integer, as the spec requires, or its name) as i64.
pub fn enum_value(v: &Value) -> i64 {
    match v {
        Value::Null => 0,
        Value::Number(n) => n.as_i64().unwrap_or(-1),
        Value::String(s) => match s.as_str() {
            "SPAN_KIND_UNSPECIFIED" | "STATUS_CODE_UNSET" | "SEVERITY_NUMBER_UNSPECIFIED" => 0,
            "SPAN_KIND_INTERNAL" | "STATUS_CODE_OK" => 1,
            "SPAN_KIND_SERVER" | "STATUS_CODE_ERROR" => 2,
            "SPAN_KIND_CLIENT" => 3,
            "SPAN_KIND_PRODUCER" => 4,
            "SPAN_KIND_CONSUMER" => 5,
            "AGGREGATION_TEMPORALITY_DELTA" => 1,
            "AGGREGATION_TEMPORALITY_CUMULATIVE" => 2,
            s if s.starts_with("SEVERITY_NUMBER_") => {
                severity_from_name(&s["SEVERITY_NUMBER_".len()..])
            }
            s => s.parse().unwrap_or(-1),
        },
        _ => -1,
    }
}

fn severity_from_name(s: &str) -> i64 {
    let (base, n) = match s.char_indices().find(|(_, c)| c.is_ascii_digit()) {
        Some((i, _)) => (&s[..i], s[i..].parse::<i64>().unwrap_or(1)),
        None => (s, 1),
    };
    let first = match base {
        "TRACE" => 1,
        "DEBUG" => 5,
        "INFO" => 9,
        "WARN" => 13,
        "ERROR" => 17,
        "FATAL" => 21,
        _ => return -2,
    };
    first + n - 1
}

/// The OTel severity number of a Python `logging` level name (any case):
/// what the jsonlog receiver must give the apps' lines.
pub fn python_level_severity(level: &str) -> i64 {
    match level.to_ascii_lowercase().as_str() {
        "debug" => 5,
        "info" => 9,
        "warning" => 13,
        "error" => 17,
        "critical" => 21,
        other => panic!("unexpected level {other}"),
    }
}

/// A number that OTLP/JSON may write as a string (int64, uint64, fixed64)
/// or a number (double), as f64.
pub fn num(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// A sender's list of strings.
pub fn str_list(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(str::to_string))
        .collect()
}

// ------------------------------------------------------------------ SDK senders

/// Folder of the committed e2e helper scripts.
pub fn e2e_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e")
}

/// The Python interpreter with the OpenTelemetry SDK installed.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("CONFLUO_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    if venv.exists() {
        return venv;
    }
    panic!(
        "CONFLUO_PYTHON is not set and .venv does not exist: run the suite with `scripts/test` \
         (it installs the OpenTelemetry Python SDK into .venv and exports CONFLUO_PYTHON)"
    );
}

/// The folder holding send_otlp_json.mjs and its node_modules.
pub fn js_dir() -> PathBuf {
    let dir = std::env::var_os("CONFLUO_JS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| e2e_dir().join("js"));
    if !dir.join("node_modules").is_dir() {
        panic!(
            "{}/node_modules is missing (CONFLUO_JS_DIR {}): run the suite with `scripts/test` \
             (it runs `npm ci` there and exports CONFLUO_JS_DIR)",
            dir.display(),
            if std::env::var_os("CONFLUO_JS_DIR").is_some() {
                "set"
            } else {
                "unset"
            }
        );
    }
    dir
}

/// Result of a sender run that may fail.
#[derive(Debug)]
pub struct SenderRun {
    pub status: ExitStatus,
    /// The JSON summary line, if one was printed.
    pub summary: Option<Value>,
    pub stdout: String,
    pub stderr: String,
}

fn run_sender(mut cmd: Command, what: &str) -> SenderRun {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {what}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let summary = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .and_then(|l| serde_json::from_str(l).ok());
    SenderRun {
        status: out.status,
        summary,
        stdout,
        stderr,
    }
}

fn expect_ok(run: SenderRun, what: &str) -> Value {
    match (&run.summary, run.status.success()) {
        (Some(v), true) => v.clone(),
        _ => panic!(
            "{what} failed ({}):\n--- stdout ---\n{}\n--- stderr ---\n{}",
            run.status, run.stdout, run.stderr
        ),
    }
}

/// Runs `tests/e2e/python/SCRIPT ARGS…` with `$CONFLUO_PYTHON`; returns the
/// run whatever its exit status.
pub fn try_run_python(script: &str, args: &[&str]) -> SenderRun {
    let mut cmd = Command::new(python());
    cmd.arg(e2e_dir().join("python").join(script)).args(args);
    run_sender(cmd, &format!("python {script}"))
}

/// Runs a Python sender and returns its JSON summary; panics (with its
/// output) when it exits non-zero.
pub fn run_python(script: &str, args: &[&str]) -> Value {
    expect_ok(
        try_run_python(script, args),
        &format!("python {script} {}", args.join(" ")),
    )
}

/// Runs `node SCRIPT ARGS…` in `$CONFLUO_JS_DIR`; returns the run whatever
/// its exit status.
pub fn try_run_node(script: &str, args: &[&str]) -> SenderRun {
    let dir = js_dir();
    let node = std::env::var_os("CONFLUO_NODE").unwrap_or_else(|| "node".into());
    let mut cmd = Command::new(node);
    cmd.current_dir(&dir).arg(dir.join(script)).args(args);
    run_sender(cmd, &format!("node {script}"))
}

/// Runs a Node sender and returns its JSON summary; panics when it fails.
pub fn run_node(script: &str, args: &[&str]) -> Value {
    expect_ok(
        try_run_node(script, args),
        &format!("node {script} {}", args.join(" ")),
    )
}

/// `$CONFLUO_ROOT/.venv-NAME/bin/BIN` (CONFLUO_ROOT falls back to the repo):
/// the tools whose pins clash with `.venv`'s get their own venv, built by
/// `scripts/test` from `tests/e2e/requirements-NAME.txt`.
pub fn venv_bin(venv: &str, bin: &str) -> PathBuf {
    let root = std::env::var_os("CONFLUO_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    let p = root.join(format!(".venv-{venv}/bin/{bin}"));
    assert!(
        p.exists(),
        "{} is missing: run `scripts/test` (it builds .venv-{venv} from \
         tests/e2e/requirements-{venv}.txt)",
        p.display()
    );
    p
}

// ------------------------------------------------------------------ contract servers

/// A contract server from `tests/e2e/python` (they all print their port as
/// the first stdout line once they listen), with a temp folder for the files
/// it records. Killed on drop.
pub struct ContractServer {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl ContractServer {
    /// `$CONFLUO_PYTHON tests/e2e/python/SCRIPT ARGS…`; see [`Self::start_with`].
    pub fn start(script: &str, args: &[&str]) -> ContractServer {
        ContractServer::start_with(&python(), script, args)
    }

    /// `INTERPRETER tests/e2e/python/SCRIPT ARGS…`, where `{DIR}` in an
    /// argument becomes the server's temp folder (so `{DIR}/x.jsonl` is
    /// [`Self::file`]`("x.jsonl")`). Returns once the port has been printed.
    pub fn start_with(interpreter: &Path, script: &str, args: &[&str]) -> ContractServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().display().to_string();
        let mut child = Command::new(interpreter)
            .arg(e2e_dir().join("python").join(script))
            .args(args.iter().map(|a| a.replace("{DIR}", &d)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {script}: {e}"));
        let mut first = String::new();
        io::BufRead::read_line(
            &mut io::BufReader::new(child.stdout.take().expect("stdout")),
            &mut first,
        )
        .expect("read the contract server's port");
        let port = first.trim().parse().unwrap_or_else(|_| {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{script} printed {first:?} instead of a port")
        });
        ContractServer { child, port, dir }
    }

    /// A file in the server's temp folder (`{DIR}/NAME`).
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The rows of the JSONL file `{DIR}/NAME` ([`read_jsonl`]).
    pub fn jsonl(&self, name: &str) -> Vec<Value> {
        read_jsonl(self.file(name))
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for ContractServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every line of a JSONL record file, parsed; a missing file is empty and a
/// bad line panics (contract servers write and flush whole lines).
pub fn read_jsonl(path: impl AsRef<Path>) -> Vec<Value> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSONL line {l:?}: {e}")))
        .collect()
}

// ------------------------------------------------------------------ fixtures

/// Hand-encoded protobuf (no prost in the tests): a valid
/// `ExportTraceServiceRequest` with one span named `name`.
pub fn otlp_trace_request_pb(name: &str, trace_id: [u8; 16], span_id: [u8; 8]) -> Vec<u8> {
    fn len_field(field: u32, bytes: &[u8], out: &mut Vec<u8>) {
        varint(u64::from(field << 3 | 2), out);
        varint(bytes.len() as u64, out);
        out.extend_from_slice(bytes);
    }
    fn fixed64_field(field: u32, v: u64, out: &mut Vec<u8>) {
        varint(u64::from(field << 3 | 1), out);
        out.extend_from_slice(&v.to_le_bytes());
    }
    fn varint(mut v: u64, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    // Span: trace_id=1, span_id=2, name=5, start=7, end=8
    let mut span = Vec::new();
    len_field(1, &trace_id, &mut span);
    len_field(2, &span_id, &mut span);
    len_field(5, name.as_bytes(), &mut span);
    fixed64_field(7, now - 1_000_000, &mut span);
    fixed64_field(8, now, &mut span);
    // ScopeSpans: spans=2
    let mut scope_spans = Vec::new();
    len_field(2, &span, &mut scope_spans);
    // Resource: attributes=1 (KeyValue key=1, value=2 AnyValue string_value=1)
    let mut any = Vec::new();
    len_field(1, b"raw-http-test", &mut any);
    let mut kv = Vec::new();
    len_field(1, b"service.name", &mut kv);
    len_field(2, &any, &mut kv);
    let mut resource = Vec::new();
    len_field(1, &kv, &mut resource);
    // ResourceSpans: resource=1, scope_spans=2
    let mut rs = Vec::new();
    len_field(1, &resource, &mut rs);
    len_field(2, &scope_spans, &mut rs);
    // ExportTraceServiceRequest: resource_spans=1
    let mut req = Vec::new();
    len_field(1, &rs, &mut req);
    req
}

/// A valid OTLP/JSON trace request with one span.
pub fn otlp_trace_request_json(name: &str, trace_id_hex: &str, span_id_hex: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    serde_json::json!({
        "resourceSpans": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "raw-http-test"}}]},
            "scopeSpans": [{
                "scope": {"name": "raw"},
                "spans": [{
                    "traceId": trace_id_hex,
                    "spanId": span_id_hex,
                    "name": name,
                    "kind": 1,
                    "startTimeUnixNano": (now - 1_000_000).to_string(),
                    "endTimeUnixNano": now.to_string(),
                }]
            }]
        }]
    })
    .to_string()
}

/// Config for one collector: OTLP gRPC+HTTP on the given ports, all three
/// signals through `processors` into the file exporter at `{{DIR}}/out.jsonl`,
/// self-telemetry on `telemetry_port`.
pub fn file_pipeline_config(
    grpc_port: u16,
    http_port: u16,
    telemetry_port: u16,
    processors: &[&str],
    extra_processor_config: &str,
) -> String {
    // No `processors:` key at all when there are none (as most Collector configs).
    let procs = if processors.is_empty() {
        String::new()
    } else {
        format!("\n      processors: [{}]", processors.join(", "))
    };
    format!(
        r#"receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc_port}
      http:
        endpoint: 127.0.0.1:{http_port}
{extra_processor_config}
exporters:
  file:
    path: {{{{DIR}}}}/out.jsonl
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{telemetry_port}
  pipelines:
    traces:
      receivers: [otlp]{procs}
      exporters: [file]
    metrics:
      receivers: [otlp]{procs}
      exporters: [file]
    logs:
      receivers: [otlp]{procs}
      exporters: [file]
"#
    )
}

/// [`Confluo::start`] with [`otlp_to_exporter_config`] on fresh loopback
/// ports; returns it and the `otlp` receiver's port.
pub fn start_otlp_to_exporter(
    protocol: &str,
    exporter: &str,
    exporter_yaml: &str,
    pipelines: &[&str],
) -> (Confluo, u16) {
    let port = free_port();
    let config = otlp_to_exporter_config(
        protocol,
        port,
        free_port(),
        exporter,
        exporter_yaml,
        pipelines,
    );
    (Confluo::start(&config), port)
}

/// A `retry_on_failure` block (indented for [`otlp_to_exporter_config`]'s
/// `exporter_yaml`) that retries fast (50 ms → 200 ms) so that a test sees
/// retries within seconds, and gives up after 30 s.
pub const FAST_RETRY: &str = "    retry_on_failure:
      initial_interval: 50ms
      max_interval: 200ms
      max_elapsed_time: 30s
";

/// Config for one collector: the `otlp` receiver (`protocol` "http" or
/// "grpc", on `port`) → the exporter `exporter` in each of `pipelines`
/// ("traces", "metrics", "logs"), self-telemetry on `telemetry_port`.
/// `exporter_yaml` is the exporter's settings, every line indented four spaces.
pub fn otlp_to_exporter_config(
    protocol: &str,
    port: u16,
    telemetry_port: u16,
    exporter: &str,
    exporter_yaml: &str,
    pipelines: &[&str],
) -> String {
    let nl = if exporter_yaml.ends_with('\n') {
        ""
    } else {
        "\n"
    };
    let pipelines: String = pipelines
        .iter()
        .map(|p| format!("    {p}:\n      receivers: [otlp]\n      exporters: [{exporter}]\n"))
        .collect();
    format!(
        r#"receivers:
  otlp:
    protocols:
      {protocol}:
        endpoint: 127.0.0.1:{port}
exporters:
  {exporter}:
{exporter_yaml}{nl}service:
  telemetry:
    metrics:
      address: 127.0.0.1:{telemetry_port}
  pipelines:
{pipelines}"#
    )
}

// ------------------------------------------------------------------ comparisons

/// Items whose resource has `confluo.test.request_id` == `request_id`.
pub fn with_request_id(items: Vec<Item>, request_id: &str) -> Vec<Item> {
    items
        .into_iter()
        .filter(|i| {
            i.resource.get("confluo.test.request_id")
                == Some(&serde_json::json!({ "stringValue": request_id }))
        })
        .collect()
}

/// Number of metric data points in file exporter rows.
pub fn count_points(rows: &[Value]) -> usize {
    metrics_in(rows)
        .iter()
        .map(|m| data_points(&m.value).2.len())
        .sum()
}

/// Items of `signal` ("traces" | "metrics" | "logs", metrics counted in data
/// points) in file exporter rows.
pub fn count_items(signal: &str, rows: &[Value]) -> usize {
    match signal {
        "traces" => spans_in(rows).len(),
        "logs" => logs_in(rows).len(),
        "metrics" => count_points(rows),
        s => panic!("unknown signal {s}"),
    }
}

struct Mismatches(Vec<String>);

impl Mismatches {
    fn check<T: PartialEq + std::fmt::Debug>(
        &mut self,
        what: impl std::fmt::Display,
        got: T,
        want: T,
    ) {
        if got != want {
            self.0.push(format!("{what}: got {got:?}, sent {want:?}"));
        }
    }
    /// Attribute maps: reports only the keys that differ, values as JSON.
    fn check_map(
        &mut self,
        what: impl std::fmt::Display,
        got: &BTreeMap<String, Value>,
        want: &BTreeMap<String, Value>,
    ) {
        let mut diffs = Vec::new();
        for (k, w) in want {
            match got.get(k) {
                None => diffs.push(format!("{k} missing (sent {w})")),
                Some(g) if g != w => diffs.push(format!("{k} = {g}, sent {w}")),
                _ => {}
            }
        }
        for (k, g) in got {
            if !want.contains_key(k) {
                diffs.push(format!("{k} = {g} was not sent"));
            }
        }
        if !diffs.is_empty() {
            self.0.push(format!("{what}: {}", diffs.join("; ")));
        }
    }

    fn finish(self, what: &str, summary: &Value) {
        if self.0.is_empty() {
            return;
        }
        let n = self.0.len();
        let shown: Vec<&String> = self.0.iter().take(25).collect();
        panic!(
            "{what}: {n} mismatch(es) between what the SDK sent and what the file exporter wrote:\n  {}\n(sender summary: {})",
            shown.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n  "),
            summary.to_string().chars().take(1500).collect::<String>()
        );
    }
}

fn id_str(v: &Value) -> String {
    v.as_str().unwrap_or("").to_ascii_lowercase()
}

/// The file exporter's spans are exactly the spans the sender reports (count,
/// ids, names, kinds, status, attribute values and types, events, links,
/// resource).
pub fn assert_traces_match(summary: &Value, items: &[Item]) {
    let mut m = Mismatches(Vec::new());
    let want_count = summary["count"].as_u64().unwrap() as usize;
    m.check("span count", items.len(), want_count);
    let mut got_trace_ids: Vec<String> =
        items.iter().map(|i| id_str(&i.value["traceId"])).collect();
    got_trace_ids.sort();
    got_trace_ids.dedup();
    m.check("trace ids", got_trace_ids, str_list(&summary["trace_ids"]));
    let mut got_names: Vec<String> = items
        .iter()
        .map(|i| i.value["name"].as_str().unwrap_or("").to_string())
        .collect();
    got_names.sort();
    m.check("span names", got_names, str_list(&summary["span_names"]));

    let by_id: BTreeMap<String, &Item> = items
        .iter()
        .map(|i| (id_str(&i.value["spanId"]), i))
        .collect();
    let want_resource = obj_map(&summary["resource"]);
    for want in summary["spans"].as_array().into_iter().flatten() {
        let sid = want["span_id"].as_str().unwrap().to_string();
        let Some(item) = by_id.get(&sid) else {
            m.0.push(format!("span {sid} ({}) missing", want["name"]));
            continue;
        };
        let s = &item.value;
        let w = |f: &str| format!("span {sid} {f}");
        m.check(
            w("traceId"),
            id_str(&s["traceId"]),
            want["trace_id"].as_str().unwrap().to_string(),
        );
        m.check(
            w("parentSpanId"),
            id_str(&s["parentSpanId"]),
            want["parent_span_id"].as_str().unwrap().to_string(),
        );
        m.check(
            w("name"),
            s["name"].as_str().unwrap_or(""),
            want["name"].as_str().unwrap(),
        );
        m.check(
            w("kind"),
            enum_value(&s["kind"]),
            want["kind"].as_i64().unwrap(),
        );
        m.check(
            w("status.code"),
            enum_value(&s["status"]["code"]),
            want["status_code"].as_i64().unwrap(),
        );
        m.check(
            w("status.message"),
            s["status"]["message"].as_str().unwrap_or(""),
            want["status_message"].as_str().unwrap(),
        );
        m.check_map(
            w("attributes"),
            &attr_map(&s["attributes"]),
            &obj_map(&want["attributes"]),
        );
        let got_events: Vec<(String, BTreeMap<String, Value>)> = s["events"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                (
                    e["name"].as_str().unwrap_or("").to_string(),
                    attr_map(&e["attributes"]),
                )
            })
            .collect();
        let want_events: Vec<(String, BTreeMap<String, Value>)> = want["events"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                (
                    e["name"].as_str().unwrap().to_string(),
                    obj_map(&e["attributes"]),
                )
            })
            .collect();
        m.check(w("events"), got_events, want_events);
        let got_links: Vec<(String, String, BTreeMap<String, Value>)> = s["links"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|l| {
                (
                    id_str(&l["traceId"]),
                    id_str(&l["spanId"]),
                    attr_map(&l["attributes"]),
                )
            })
            .collect();
        let want_links: Vec<(String, String, BTreeMap<String, Value>)> = want["links"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|l| {
                (
                    id_str(&l["trace_id"]),
                    id_str(&l["span_id"]),
                    obj_map(&l["attributes"]),
                )
            })
            .collect();
        m.check(w("links"), got_links, want_links);
        m.check_map(w("resource"), &item.resource, &want_resource);
        if !item.scope_name.starts_with("confluo.e2e.") {
            m.0.push(format!("span {sid}: scope name {:?}", item.scope_name));
        }
    }
    m.finish("traces", summary);
}

/// The file exporter's log records are exactly the records the sender
/// reports (bodies, severities, trace context, attributes, resource). Python's
/// logging handler adds `code.*` attributes, which are ignored.
pub fn assert_logs_match(summary: &Value, items: &[Item]) {
    let mut m = Mismatches(Vec::new());
    m.check(
        "log record count",
        items.len(),
        summary["count"].as_u64().unwrap() as usize,
    );
    let mut got_trace_ids: Vec<String> =
        items.iter().map(|i| id_str(&i.value["traceId"])).collect();
    got_trace_ids.sort();
    got_trace_ids.dedup();
    m.check("trace ids", got_trace_ids, str_list(&summary["trace_ids"]));
    let by_body: BTreeMap<String, &Item> = items
        .iter()
        .map(|i| {
            (
                i.value["body"]["stringValue"]
                    .as_str()
                    .unwrap_or("<not a string body>")
                    .to_string(),
                i,
            )
        })
        .collect();
    let want_resource = obj_map(&summary["resource"]);
    for want in summary["log_records"].as_array().into_iter().flatten() {
        let body = want["body"].as_str().unwrap().to_string();
        let Some(item) = by_body.get(&body) else {
            m.0.push(format!(
                "log record {body:?} missing (bodies must be OTLP stringValue)"
            ));
            continue;
        };
        let r = &item.value;
        let w = |f: &str| format!("log {body:?} {f}");
        m.check(
            w("severityNumber"),
            enum_value(&r["severityNumber"]),
            want["severity_number"].as_i64().unwrap(),
        );
        m.check(
            w("severityText"),
            r["severityText"].as_str().unwrap_or(""),
            want["severity_text"].as_str().unwrap(),
        );
        m.check(
            w("traceId"),
            id_str(&r["traceId"]),
            want["trace_id"].as_str().unwrap().to_string(),
        );
        m.check(
            w("spanId"),
            id_str(&r["spanId"]),
            want["span_id"].as_str().unwrap().to_string(),
        );
        let got_attrs: BTreeMap<String, Value> = attr_map(&r["attributes"])
            .into_iter()
            .filter(|(k, _)| !k.starts_with("code."))
            .collect();
        m.check_map(w("attributes"), &got_attrs, &obj_map(&want["attributes"]));
        m.check_map(w("resource"), &item.resource, &want_resource);
    }
    m.finish("logs", summary);
}

/// The file exporter's metrics hold exactly the data points the sender
/// reports (names, kinds, units, monotonicity, temporality, values and value
/// types, attributes, resource).
pub fn assert_metrics_match(summary: &Value, items: &[Item]) {
    let mut m = Mismatches(Vec::new());
    // (metric name, point.index) -> (kind, point)
    let mut got: BTreeMap<(String, i64), (String, Value)> = BTreeMap::new();
    let mut got_metrics: BTreeMap<String, (String, Value, String)> = BTreeMap::new();
    let mut total = 0usize;
    let want_resource = obj_map(&summary["resource"]);
    for item in items {
        let name = item.value["name"].as_str().unwrap_or("").to_string();
        let (kind, body, points) = data_points(&item.value);
        got_metrics.insert(
            name.clone(),
            (
                kind.clone(),
                body.clone(),
                item.value["unit"].as_str().unwrap_or("").to_string(),
            ),
        );
        m.check_map(
            format!("metric {name} resource"),
            &item.resource,
            &want_resource,
        );
        for p in points {
            total += 1;
            let idx = attr_map(&p["attributes"])
                .get("point.index")
                .and_then(|v| num(&v["intValue"]))
                .map(|v| v as i64)
                .unwrap_or(-1);
            if got
                .insert((name.clone(), idx), (kind.clone(), p.clone()))
                .is_some()
            {
                m.0.push(format!("metric {name} point.index={idx} written twice"));
            }
        }
    }
    m.check(
        "data point count",
        total,
        summary["count"].as_u64().unwrap() as usize,
    );
    m.check(
        "metric names",
        got_metrics.keys().cloned().collect::<Vec<_>>(),
        str_list(&summary["metric_names"]),
    );
    for want in summary["metrics"].as_array().into_iter().flatten() {
        let name = want["name"].as_str().unwrap();
        let Some((kind, body, unit)) = got_metrics.get(name) else {
            continue; // reported by "metric names"
        };
        m.check(
            format!("metric {name} type"),
            kind.as_str(),
            want["type"].as_str().unwrap(),
        );
        m.check(
            format!("metric {name} unit"),
            unit.as_str(),
            want["unit"].as_str().unwrap(),
        );
        if kind == "sum" {
            m.check(
                format!("metric {name} isMonotonic"),
                body["isMonotonic"].as_bool().unwrap_or(false),
                want["monotonic"].as_bool().unwrap_or(false),
            );
        }
        if kind == "sum" || kind == "histogram" {
            m.check(
                format!("metric {name} aggregationTemporality"),
                enum_value(&body["aggregationTemporality"]),
                want["temporality"].as_i64().unwrap_or(-1),
            );
        }
    }
    for want in summary["points"].as_array().into_iter().flatten() {
        let name = want["metric"].as_str().unwrap().to_string();
        let idx = want["index"].as_i64().unwrap_or(-1);
        let Some((kind, p)) = got.get(&(name.clone(), idx)) else {
            m.0.push(format!("metric {name} point.index={idx} missing"));
            continue;
        };
        let w = |f: &str| format!("metric {name} point.index={idx} {f}");
        m.check_map(
            w("attributes"),
            &attr_map(&p["attributes"]),
            &obj_map(&want["attributes"]),
        );
        let want_value = want["value"].as_f64().unwrap();
        if kind == "histogram" {
            m.check(w("sum"), num(&p["sum"]), Some(want_value));
            m.check(
                w("count"),
                num(&p["count"]),
                want["histogram_count"].as_f64(),
            );
        } else {
            if want["is_int"].as_bool() == Some(true) {
                // int64 in OTLP/JSON is a string
                m.check(w("asInt type"), p["asInt"].is_string(), true);
            }
            let v = p
                .get("asInt")
                .and_then(num)
                .or_else(|| p.get("asDouble").and_then(num));
            m.check(w("value"), v, Some(want_value));
        }
    }
    m.finish("metrics", summary);
}

/// Checks the file exporter's items of `signal` against a sender summary.
pub fn assert_signal_matches(signal: &str, summary: &Value, rows: &[Value]) {
    match signal {
        "traces" => assert_traces_match(summary, &spans_in(rows)),
        "logs" => assert_logs_match(summary, &logs_in(rows)),
        "metrics" => assert_metrics_match(summary, &metrics_in(rows)),
        s => panic!("unknown signal {s}"),
    }
}
