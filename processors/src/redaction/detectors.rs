//! The built-in detectors: their patterns (compiled together with the user's
//! `blocked_values` into one multi-pattern regex) and the checks that run on
//! a candidate match before it is masked (Luhn, card prefixes, file-name
//! "emails"), plus the password-like key names.

use super::config::Detector;

/// What a pattern of the combined matcher is, which decides the part of a
/// match that gets masked and whether a candidate is accepted at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A user `blocked_values` regex: the whole match is masked.
    Blocked,
    CreditCard,
    Email,
    Jwt,
    /// `Bearer <token>`: the scheme is kept, the credential masked.
    Bearer,
    /// `Basic <base64>`.
    BasicAuth,
    AwsAccessKey,
    PrivateKey,
    /// `password=…`, `"api_key": "…"` inside text: the value is masked.
    KeyValueText,
}

// ASCII word boundaries: the lazy DFA handles them (it gives up on Unicode
// ones when it sees non-ASCII text, falling back to the slower PikeVM).
const CREDIT_CARD: &str = r"(?-u:\b)[2-6](?:[0-9][ \-]?){11,17}[0-9](?-u:\b)";
const EMAIL: &str = r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}(?-u:\b)";
const JWT: &str = r"(?-u:\b)eyJ[A-Za-z0-9_\-]{2,}\.[A-Za-z0-9_\-]{2,}\.[A-Za-z0-9_\-]*";
const BEARER: &str = r"(?-u:\b)(?i:bearer)[ \t]+[A-Za-z0-9\-._~+/]+=*";
const BASIC: &str = r"(?-u:\b)(?i:basic)[ \t]+[A-Za-z0-9+/]{8,}=*";
const AWS_ACCESS_KEY: &str = r"(?-u:\b)(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|APKA|A3T[A-Z0-9])[A-Z0-9]{16}(?-u:\b)";
const PRIVATE_KEY: &str =
    r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY-----(?s:.)*?(?:-----END[A-Z0-9 ]*PRIVATE KEY-----|\z)";
const KEY_VALUE_TEXT: &str = r#"(?i)(?-u:\b)[a-z0-9_.\-]*(?:password|passwd|passphrase|pwd|secret|token|api[_\-]?key|access[_\-]?key|authorization)["']?[ \t]*[:=][ \t]*["']?(?:(?:bearer|basic|digest|token|negotiate)[ \t]+)?[^\s"',;&]+"#;

/// The patterns a detector adds to the combined matcher.
pub fn patterns(d: Detector) -> &'static [(Kind, &'static str)] {
    match d {
        Detector::CreditCard => &[(Kind::CreditCard, CREDIT_CARD)],
        Detector::Email => &[(Kind::Email, EMAIL)],
        Detector::Jwt => &[(Kind::Jwt, JWT)],
        Detector::BearerToken | Detector::Authorization => {
            &[(Kind::Bearer, BEARER), (Kind::BasicAuth, BASIC)]
        }
        Detector::AwsAccessKey => &[(Kind::AwsAccessKey, AWS_ACCESS_KEY)],
        Detector::PrivateKey => &[(Kind::PrivateKey, PRIVATE_KEY)],
        Detector::PasswordKeys => &[(Kind::KeyValueText, KEY_VALUE_TEXT)],
    }
}

/// The byte range of `m` (a match of a pattern of `kind`) to mask, or None
/// when the candidate is rejected (a false positive).
pub fn mask_range(kind: Kind, m: &str) -> Option<(usize, usize)> {
    match kind {
        Kind::Blocked | Kind::Jwt | Kind::AwsAccessKey | Kind::PrivateKey => Some((0, m.len())),
        Kind::CreditCard => card_end(m).map(|end| (0, end)),
        Kind::Email => (!is_file_name(m)).then_some((0, m.len())),
        Kind::Bearer | Kind::BasicAuth => {
            let start = m.find([' ', '\t'])?;
            let start = start + m[start..].len() - m[start..].trim_start().len();
            Some((start, m.len()))
        }
        Kind::KeyValueText => {
            let sep = m.find([':', '='])?;
            let rest = &m[sep + 1..];
            let mut start =
                sep + 1 + (rest.len() - rest.trim_start_matches([' ', '\t', '"', '\'']).len());
            // Keep an auth scheme (`authorization: Bearer …`) readable.
            let value = &m[start..];
            if let Some(sp) = value.find([' ', '\t']) {
                let after = &value[sp..];
                start += sp + (after.len() - after.trim_start().len());
            }
            (start < m.len()).then_some((start, m.len()))
        }
    }
}

/// The end of the longest prefix of a card-number candidate (digits with
/// optional spaces/dashes) that is a plausible card: 13–19 digits, a card
/// network prefix and a valid Luhn check digit. Shorter prefixes are tried
/// at group boundaries so that `4111 1111 1111 1111 5` still finds the card.
pub fn card_end(m: &str) -> Option<usize> {
    let bytes = m.as_bytes();
    let mut digits = [0u8; 19];
    let mut ends: [(usize, usize); 19] = [(0, 0); 19];
    let mut n = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b.is_ascii_digit() {
            if n == 19 {
                break;
            }
            digits[n] = b - b'0';
            n += 1;
            let boundary = i + 1 == bytes.len() || !bytes[i + 1].is_ascii_digit();
            if boundary {
                ends[n - 1] = (i + 1, n);
            }
        }
    }
    (13..=n)
        .rev()
        .filter(|&len| ends[len - 1].1 == len)
        .find(|&len| is_card_prefix(&digits[..len]) && luhn_ok(&digits[..len]))
        .map(|len| ends[len - 1].0)
}

/// The Luhn (mod 10) check over decimal digits (values 0–9).
pub fn luhn_ok(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, &d) in digits.iter().rev().enumerate() {
        let mut v = d as u32;
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

/// Issuer prefixes of the card networks (Visa, Mastercard, Amex, Discover,
/// UnionPay, JCB, Diners), which cut random 16-digit numbers that happen to
/// pass Luhn (one in ten) down considerably.
fn is_card_prefix(d: &[u8]) -> bool {
    let num = |k: usize| d[..k].iter().fold(0u32, |a, &x| a * 10 + x as u32);
    match d[0] {
        4 => true,
        5 => (51..=55).contains(&num(2)),
        2 => (2221..=2720).contains(&num(4)),
        3 => {
            let two = num(2);
            two == 34
                || two == 37
                || two == 36
                || two == 38
                || two == 39
                || (300..=305).contains(&num(3))
                || (3528..=3589).contains(&num(4))
        }
        6 => {
            let two = num(2);
            two == 65 || two == 62 || num(4) == 6011 || (644..=649).contains(&num(3))
        }
        _ => false,
    }
}

/// `icon@2x.png` and the like: the "domain" ends in a file extension.
fn is_file_name(m: &str) -> bool {
    const EXTENSIONS: [&str; 16] = [
        "png", "jpg", "jpeg", "gif", "svg", "webp", "ico", "css", "js", "map", "json", "yaml",
        "yml", "txt", "log", "html",
    ];
    let tld = m.rsplit('.').next().unwrap_or("");
    EXTENSIONS.iter().any(|e| e.eq_ignore_ascii_case(tld))
}

/// Whether a key names a credential: its last segment (after `.`, `/` or
/// `:`), lower-cased with `_`, `-` and spaces removed, ends with password,
/// passwd, passphrase, pwd, secret, token, apikey, accesskey or
/// authorization. `PassWord`, `api-key`, `X_API_KEY`, `db.password` and
/// `http.request.header.authorization` match; `total_tokens`,
/// `token_count` and `secretary` do not.
pub fn is_password_key(key: &str) -> bool {
    const SUFFIXES: [&[u8]; 9] = [
        b"password",
        b"passwd",
        b"passphrase",
        b"pwd",
        b"secret",
        b"token",
        b"apikey",
        b"accesskey",
        b"authorization",
    ];
    // The last segment (after `.`, `/` or `:`), normalized and reversed, up
    // to the longest suffix's length.
    let mut rev = [0u8; 16];
    let mut n = 0;
    for b in key.bytes().rev() {
        if matches!(b, b'.' | b'/' | b':') {
            break;
        }
        if matches!(b, b'_' | b'-' | b' ') {
            continue;
        }
        if n == rev.len() {
            break;
        }
        rev[n] = b.to_ascii_lowercase();
        n += 1;
    }
    SUFFIXES
        .iter()
        .any(|s| s.len() <= n && s.iter().rev().zip(&rev[..s.len()]).all(|(a, b)| a == b))
}
