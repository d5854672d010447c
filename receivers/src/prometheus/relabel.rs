//! Prometheus relabeling (`relabel_configs`, `metric_relabel_configs`), after
//! `prometheus/model/relabel/relabel.go`: every action, the same defaults
//! (`separator: ;`, `regex: (.*)` anchored, `replacement: $1`,
//! `action: replace`) and the same validation messages.

use md5::{Digest, Md5};
use regex::Regex;
use serde::Deserialize;

/// A label set: (name, value) pairs, kept sorted by name. An empty value
/// means "absent", as in Prometheus.
pub type LabelSet = Vec<(String, String)>;

pub fn get<'a>(ls: &'a LabelSet, name: &str) -> &'a str {
    match ls.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
        Ok(i) => &ls[i].1,
        Err(_) => "",
    }
}

/// Sets (or, for an empty value, deletes) a label, keeping the order.
pub fn set(ls: &mut LabelSet, name: &str, value: String) {
    match ls.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
        Ok(i) if value.is_empty() => {
            ls.remove(i);
        }
        Ok(i) => ls[i].1 = value,
        Err(_) if value.is_empty() => {}
        Err(i) => ls.insert(i, (name.to_string(), value)),
    }
}

pub fn del(ls: &mut LabelSet, name: &str) {
    if let Ok(i) = ls.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
        ls.remove(i);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Replace,
    Keep,
    Drop,
    KeepEqual,
    DropEqual,
    HashMod,
    LabelMap,
    LabelDrop,
    LabelKeep,
    Lowercase,
    Uppercase,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Action::Replace => "replace",
            Action::Keep => "keep",
            Action::Drop => "drop",
            Action::KeepEqual => "keepequal",
            Action::DropEqual => "dropequal",
            Action::HashMod => "hashmod",
            Action::LabelMap => "labelmap",
            Action::LabelDrop => "labeldrop",
            Action::LabelKeep => "labelkeep",
            Action::Lowercase => "lowercase",
            Action::Uppercase => "uppercase",
        }
    }
}

/// One `relabel_configs` entry as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelabelConfigYaml {
    #[serde(default)]
    pub source_labels: Vec<String>,
    pub separator: Option<String>,
    pub regex: Option<String>,
    pub modulus: Option<u64>,
    pub target_label: Option<String>,
    pub replacement: Option<String>,
    pub action: Option<Action>,
}

pub const DEFAULT_REGEX: &str = "(.*)";
pub const DEFAULT_SEPARATOR: &str = ";";
pub const DEFAULT_REPLACEMENT: &str = "$1";

/// A checked relabel rule.
#[derive(Clone, Debug)]
pub struct RelabelConfig {
    pub source_labels: Vec<String>,
    pub separator: String,
    /// Anchored: `^(?:regex)$`.
    pub regex: Regex,
    pub modulus: u64,
    pub target_label: String,
    pub replacement: String,
    pub action: Action,
}

pub fn is_valid_label_name(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// Prometheus's `relabelTarget`: a label name that may contain `$1`/`${x}` references.
fn is_valid_relabel_target(s: &str) -> bool {
    static RE: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$").expect("static regex")
    })
    .is_match(s)
}

impl RelabelConfigYaml {
    /// Applies the defaults and Prometheus's `Validate`.
    pub fn build(&self) -> Result<RelabelConfig, String> {
        let action = self.action.unwrap_or(Action::Replace);
        let regex_src = self.regex.as_deref().unwrap_or(DEFAULT_REGEX);
        let regex =
            Regex::new(&format!("^(?:{regex_src})$")).map_err(|e| format!("invalid regex: {e}"))?;
        let separator = self
            .separator
            .clone()
            .unwrap_or_else(|| DEFAULT_SEPARATOR.into());
        let replacement = self
            .replacement
            .clone()
            .unwrap_or_else(|| DEFAULT_REPLACEMENT.into());
        let target_label = self.target_label.clone().unwrap_or_default();
        let modulus = self.modulus.unwrap_or(0);
        for l in &self.source_labels {
            if !is_valid_label_name(l) {
                return Err(format!("{l:?} is not a valid label name"));
            }
        }
        let a = action.name();
        if action == Action::HashMod && modulus == 0 {
            return Err("relabel configuration for hashmod requires non-zero modulus".into());
        }
        if matches!(
            action,
            Action::Replace
                | Action::HashMod
                | Action::Lowercase
                | Action::Uppercase
                | Action::KeepEqual
                | Action::DropEqual
        ) && target_label.is_empty()
        {
            return Err(format!(
                "relabel configuration for {a} action requires 'target_label' value"
            ));
        }
        if action == Action::Replace && !is_valid_relabel_target(&target_label) {
            return Err(format!(
                "{target_label:?} is invalid 'target_label' for {a} action"
            ));
        }
        if matches!(
            action,
            Action::Lowercase
                | Action::Uppercase
                | Action::HashMod
                | Action::KeepEqual
                | Action::DropEqual
        ) && !is_valid_label_name(&target_label)
        {
            return Err(format!(
                "{target_label:?} is invalid 'target_label' for {a} action"
            ));
        }
        if action == Action::LabelMap && !is_valid_relabel_target(&replacement) {
            return Err(format!(
                "{replacement:?} is invalid 'replacement' for {a} action"
            ));
        }
        if matches!(action, Action::KeepEqual | Action::DropEqual)
            && (self.regex.as_deref().is_some_and(|r| r != DEFAULT_REGEX)
                || modulus != 0
                || separator != DEFAULT_SEPARATOR
                || replacement != DEFAULT_REPLACEMENT)
        {
            return Err(format!(
                "{a} action requires only 'source_labels' and `target_label`, and no other fields"
            ));
        }
        if matches!(action, Action::LabelDrop | Action::LabelKeep)
            && (!self.source_labels.is_empty()
                || !target_label.is_empty()
                || modulus != 0
                || separator != DEFAULT_SEPARATOR
                || replacement != DEFAULT_REPLACEMENT)
        {
            return Err(format!(
                "{a} action requires only 'regex', and no other fields"
            ));
        }
        Ok(RelabelConfig {
            source_labels: self.source_labels.clone(),
            separator,
            regex,
            modulus,
            target_label,
            replacement,
            action,
        })
    }
}

/// Applies the rules in order; `false` means the label set is dropped.
pub fn process(ls: &mut LabelSet, rules: &[RelabelConfig]) -> bool {
    rules.iter().all(|r| relabel(ls, r))
}

fn relabel(ls: &mut LabelSet, cfg: &RelabelConfig) -> bool {
    let val = {
        let mut v = String::new();
        for (i, l) in cfg.source_labels.iter().enumerate() {
            if i > 0 {
                v.push_str(&cfg.separator);
            }
            v.push_str(get(ls, l));
        }
        v
    };
    match cfg.action {
        Action::Drop => {
            if cfg.regex.is_match(&val) {
                return false;
            }
        }
        Action::Keep => {
            if !cfg.regex.is_match(&val) {
                return false;
            }
        }
        Action::DropEqual => {
            if get(ls, &cfg.target_label) == val {
                return false;
            }
        }
        Action::KeepEqual => {
            if get(ls, &cfg.target_label) != val {
                return false;
            }
        }
        Action::Replace => {
            let Some(caps) = cfg.regex.captures(&val) else {
                return true;
            };
            let target = expand(&cfg.regex, &caps, &cfg.target_label);
            if !is_valid_label_name(&target) {
                return true;
            }
            let res = expand(&cfg.regex, &caps, &cfg.replacement);
            // An empty result deletes the target (Prometheus's `lb.Del`).
            set(ls, &target, res);
        }
        Action::Lowercase => set(ls, &cfg.target_label, val.to_lowercase()),
        Action::Uppercase => set(ls, &cfg.target_label, val.to_uppercase()),
        Action::HashMod => {
            let m = hashmod(&val, cfg.modulus);
            set(ls, &cfg.target_label, m.to_string());
        }
        Action::LabelMap => {
            let snapshot: Vec<(String, String)> = ls.clone();
            for (name, value) in snapshot {
                if let Some(caps) = cfg.regex.captures(&name) {
                    let res = expand(&cfg.regex, &caps, &cfg.replacement);
                    set(ls, &res, value);
                }
            }
        }
        Action::LabelDrop => ls.retain(|(n, _)| !cfg.regex.is_match(n)),
        Action::LabelKeep => ls.retain(|(n, _)| cfg.regex.is_match(n)),
    }
    true
}

/// Prometheus: `binary.BigEndian.Uint64(md5.Sum(val)[8:]) % modulus` — the
/// last 8 bytes of the digest, read big-endian.
pub fn hashmod(val: &str, modulus: u64) -> u64 {
    let digest = Md5::digest(val.as_bytes());
    let mut last = [0u8; 8];
    last.copy_from_slice(&digest[8..16]);
    u64::from_be_bytes(last) % modulus
}

/// Go's `regexp.Expand`: `$1`, `${1}`, `$name`, `${name}`, `$$`. A name is
/// the longest run of letters, digits and `_` (so `$1x` is the group named
/// `1x`); unknown groups expand to nothing; a malformed `$` stays literal.
pub fn expand(re: &Regex, caps: &regex::Captures<'_>, template: &str) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix('$') {
            out.push('$');
            rest = r;
            continue;
        }
        let (name, after) = if let Some(r) = rest.strip_prefix('{') {
            match r.find('}') {
                Some(end) if end > 0 && r[..end].chars().all(is_word) => (&r[..end], &r[end + 1..]),
                _ => {
                    out.push('$');
                    continue;
                }
            }
        } else {
            let end = rest
                .char_indices()
                .find(|(_, c)| !is_word(*c))
                .map_or(rest.len(), |(i, _)| i);
            if end == 0 {
                out.push('$');
                continue;
            }
            (&rest[..end], &rest[end..])
        };
        rest = after;
        let group = if name.bytes().all(|b| b.is_ascii_digit()) {
            name.parse::<usize>().ok().and_then(|n| caps.get(n))
        } else {
            re.capture_names()
                .position(|n| n == Some(name))
                .and_then(|i| caps.get(i))
        };
        if let Some(m) = group {
            out.push_str(m.as_str());
        }
    }
    out.push_str(rest);
    out
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ls(pairs: &[(&str, &str)]) -> LabelSet {
        let mut v: LabelSet = pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        v.sort();
        v
    }

    fn rule(yaml: RelabelConfigYaml) -> RelabelConfig {
        yaml.build().unwrap()
    }

    fn y() -> RelabelConfigYaml {
        RelabelConfigYaml::default()
    }

    #[test]
    fn replace_default_and_templates() {
        // The cases of Prometheus's relabel_test.go "TestRelabel".
        let mut l = ls(&[("a", "foo"), ("b", "bar"), ("c", "baz")]);
        let r = rule(RelabelConfigYaml {
            source_labels: vec!["a".into()],
            regex: Some("f(.*)".into()),
            target_label: Some("d".into()),
            replacement: Some("ch${1}-ch${1}".into()),
            ..y()
        });
        assert!(process(&mut l, &[r]));
        assert_eq!(get(&l, "d"), "choo-choo");

        let mut l = ls(&[("a", "foo"), ("b", "bar"), ("c", "baz")]);
        let rules = [
            rule(RelabelConfigYaml {
                source_labels: vec!["a".into(), "b".into()],
                regex: Some("f(.*);(.*)r".into()),
                target_label: Some("a".into()),
                replacement: Some("b${1}${2}m".into()),
                ..y()
            }),
            rule(RelabelConfigYaml {
                source_labels: vec!["c".into(), "a".into()],
                regex: Some("(b).*b(.*)ba(.*)".into()),
                target_label: Some("d".into()),
                replacement: Some("$1$2$2$3".into()),
                ..y()
            }),
        ];
        assert!(process(&mut l, &rules));
        assert_eq!(
            l,
            ls(&[("a", "boobam"), ("b", "bar"), ("c", "baz"), ("d", "boooom")])
        );

        // No match: unchanged. `$1x` is the (absent) group "1x".
        let mut l = ls(&[("a", "foo")]);
        let r = rule(RelabelConfigYaml {
            source_labels: vec!["a".into()],
            regex: Some("(f)oo".into()),
            target_label: Some("t".into()),
            replacement: Some("$1x-${1}x".into()),
            ..y()
        });
        assert!(process(&mut l, &[r]));
        assert_eq!(get(&l, "t"), "-fx");
        // Empty replacement result deletes the target.
        let mut l = ls(&[("a", "foo"), ("t", "x")]);
        let r = rule(RelabelConfigYaml {
            source_labels: vec!["a".into()],
            target_label: Some("t".into()),
            replacement: Some("".into()),
            ..y()
        });
        assert!(process(&mut l, &[r]));
        assert_eq!(l, ls(&[("a", "foo")]));
        // Target from a template; invalid result leaves the set alone.
        let mut l = ls(&[("a", "some-name-value")]);
        let r = rule(RelabelConfigYaml {
            source_labels: vec!["a".into()],
            regex: Some("some-([^-]+)-([^,]+)".into()),
            target_label: Some("${1}".into()),
            replacement: Some("${2}".into()),
            ..y()
        });
        assert!(process(&mut l, &[r]));
        assert_eq!(get(&l, "name"), "value");
        let mut l = ls(&[("a", "some-1name-value")]);
        let r = rule(RelabelConfigYaml {
            source_labels: vec!["a".into()],
            regex: Some("some-([^-]+)-([^,]+)".into()),
            target_label: Some("${1}".into()),
            replacement: Some("${2}".into()),
            ..y()
        });
        assert!(process(&mut l, &[r]));
        assert_eq!(l, ls(&[("a", "some-1name-value")]));
        // Named groups and `$$`.
        let mut l = ls(&[("a", "foo")]);
        let r = rule(RelabelConfigYaml {
            source_labels: vec!["a".into()],
            regex: Some("(?P<x>f)oo".into()),
            target_label: Some("t".into()),
            replacement: Some("$x$$".into()),
            ..y()
        });
        assert!(process(&mut l, &[r]));
        assert_eq!(get(&l, "t"), "f$");
    }

    #[test]
    fn keep_drop_equal() {
        let base = ls(&[("a", "foo"), ("b", "foo"), ("c", "bar")]);
        let keep = rule(RelabelConfigYaml {
            source_labels: vec!["a".into()],
            regex: Some("f.*".into()),
            action: Some(Action::Keep),
            ..y()
        });
        let drop = rule(RelabelConfigYaml {
            source_labels: vec!["a".into()],
            regex: Some("f.*".into()),
            action: Some(Action::Drop),
            ..y()
        });
        assert!(process(&mut base.clone(), std::slice::from_ref(&keep)));
        assert!(!process(&mut base.clone(), &[drop]));
        // Anchoring: "o" does not match "foo".
        let anchored = rule(RelabelConfigYaml {
            source_labels: vec!["a".into()],
            regex: Some("o".into()),
            action: Some(Action::Keep),
            ..y()
        });
        assert!(!process(&mut base.clone(), &[anchored]));
        let ke = |t: &str, a| {
            rule(RelabelConfigYaml {
                source_labels: vec!["a".into()],
                target_label: Some(t.into()),
                action: Some(a),
                ..y()
            })
        };
        assert!(process(&mut base.clone(), &[ke("b", Action::KeepEqual)]));
        assert!(!process(&mut base.clone(), &[ke("c", Action::KeepEqual)]));
        assert!(!process(&mut base.clone(), &[ke("b", Action::DropEqual)]));
        assert!(process(&mut base.clone(), &[ke("c", Action::DropEqual)]));
        // Missing source label is the empty string: keep on `^$`.
        let r = rule(RelabelConfigYaml {
            source_labels: vec!["missing".into()],
            regex: Some("".into()),
            action: Some(Action::Keep),
            ..y()
        });
        assert!(process(&mut base.clone(), &[r]));
    }

    #[test]
    fn hashmod_matches_prometheus() {
        // From Prometheus's relabel_test.go: "baz" mod 1000 is 976 (the
        // last 8 digest bytes, big-endian; the first 8 would give 48).
        assert_eq!(hashmod("baz", 1000), 976);
        let mut l = ls(&[("a", "foo")]);
        let r = rule(RelabelConfigYaml {
            source_labels: vec!["a".into()],
            target_label: Some("h".into()),
            modulus: Some(1000),
            action: Some(Action::HashMod),
            ..y()
        });
        assert!(process(&mut l, &[r]));
        assert_eq!(get(&l, "h"), "696");
    }

    #[test]
    fn labelmap_drop_keep_case() {
        let mut l = ls(&[
            ("__meta_my_bar", "aaa"),
            ("__meta_my_baz", "bbb"),
            ("a", "x"),
        ]);
        let r = rule(RelabelConfigYaml {
            regex: Some("__meta_my_(.+)".into()),
            replacement: Some("${1}".into()),
            action: Some(Action::LabelMap),
            ..y()
        });
        assert!(process(&mut l, &[r]));
        assert_eq!(get(&l, "bar"), "aaa");
        assert_eq!(get(&l, "baz"), "bbb");
        assert_eq!(get(&l, "__meta_my_bar"), "aaa");
        let drop = rule(RelabelConfigYaml {
            regex: Some("__meta.*".into()),
            action: Some(Action::LabelDrop),
            ..y()
        });
        let mut d = l.clone();
        assert!(process(&mut d, &[drop]));
        assert_eq!(d, ls(&[("a", "x"), ("bar", "aaa"), ("baz", "bbb")]));
        let keep = rule(RelabelConfigYaml {
            regex: Some("ba.".into()),
            action: Some(Action::LabelKeep),
            ..y()
        });
        assert!(process(&mut l, &[keep]));
        assert_eq!(l, ls(&[("bar", "aaa"), ("baz", "bbb")]));
        let lower = rule(RelabelConfigYaml {
            source_labels: vec!["bar".into(), "baz".into()],
            target_label: Some("up".into()),
            action: Some(Action::Uppercase),
            ..y()
        });
        assert!(process(&mut l, &[lower]));
        assert_eq!(get(&l, "up"), "AAA;BBB");
        let lower = rule(RelabelConfigYaml {
            source_labels: vec!["up".into()],
            target_label: Some("lo".into()),
            action: Some(Action::Lowercase),
            ..y()
        });
        assert!(process(&mut l, &[lower]));
        assert_eq!(get(&l, "lo"), "aaa;bbb");
    }

    #[test]
    fn validation() {
        let cases: Vec<(RelabelConfigYaml, &str)> = vec![
            (
                RelabelConfigYaml {
                    action: Some(Action::HashMod),
                    target_label: Some("a".into()),
                    ..y()
                },
                "non-zero modulus",
            ),
            (RelabelConfigYaml { ..y() }, "requires 'target_label'"),
            (
                RelabelConfigYaml {
                    target_label: Some("1bad".into()),
                    ..y()
                },
                "invalid 'target_label'",
            ),
            (
                RelabelConfigYaml {
                    action: Some(Action::LabelDrop),
                    source_labels: vec!["a".into()],
                    ..y()
                },
                "requires only 'regex'",
            ),
            (
                RelabelConfigYaml {
                    action: Some(Action::KeepEqual),
                    target_label: Some("a".into()),
                    regex: Some("x".into()),
                    ..y()
                },
                "requires only 'source_labels'",
            ),
            (
                RelabelConfigYaml {
                    regex: Some("(".into()),
                    target_label: Some("a".into()),
                    ..y()
                },
                "invalid regex",
            ),
            (
                RelabelConfigYaml {
                    source_labels: vec!["a-b".into()],
                    target_label: Some("a".into()),
                    ..y()
                },
                "not a valid label name",
            ),
        ];
        for (c, msg) in cases {
            let e = c.build().unwrap_err();
            assert!(e.contains(msg), "{e}");
        }
    }

    proptest::proptest! {
        #[test]
        fn expand_never_panics(t in "[$a-z0-9{}_]{0,12}", v in "[a-z]{0,6}") {
            let re = Regex::new("^(?:(?P<n>[a-z]*))$").unwrap();
            if let Some(c) = re.captures(&v) {
                let out = expand(&re, &c, &t);
                if !t.contains('$') { proptest::prop_assert_eq!(out, t); }
            }
        }
    }
}
