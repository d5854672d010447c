//! `url_sanitizer` and `db_sanitizer`: rewrite URLs and SQL so that the
//! values in them (query parameters, ids in paths, SQL literals) do not
//! leave the collector, while the shape (the route, the statement) stays.

const MASK: &str = "****";

/// Which part of a URL an attribute holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UrlPart {
    /// Decide from the text: `scheme://…`, `/path?query` or `a=1&b=2`.
    Auto,
    Query,
}

impl UrlPart {
    pub fn for_key(key: &str) -> UrlPart {
        if key.ends_with(".query") {
            UrlPart::Query
        } else {
            UrlPart::Auto
        }
    }
}

/// The sanitized URL, or None when nothing changed. Query values become
/// `****` (names kept), user info becomes `****`, and path segments that
/// look like ids (numbers, UUIDs, long hex or random tokens) become `*`.
pub fn sanitize_url(s: &str, part: UrlPart) -> Option<String> {
    // Most URLs have nothing to hide: without user info, a query, a
    // fragment or an id-like segment they are left as they are, and the
    // copy below need not be built to find that out.
    if part == UrlPart::Auto
        && !s.contains(['?', '#', '=', '@'])
        && !s.split('/').any(looks_like_id)
    {
        return None;
    }
    let mut out = String::with_capacity(s.len());
    if part == UrlPart::Query {
        sanitize_query(s, &mut out);
    } else {
        let mut rest = s;
        if let Some(i) = s.find("://") {
            let (scheme, after) = s.split_at(i + 3);
            out.push_str(scheme);
            let end = after.find(['/', '?', '#']).unwrap_or(after.len());
            let authority = &after[..end];
            match authority.rfind('@') {
                Some(at) => {
                    out.push_str(MASK);
                    out.push_str(&authority[at..]);
                }
                None => out.push_str(authority),
            }
            rest = &after[end..];
        } else if !s.starts_with('/') && !s.contains('/') && s.contains('=') {
            sanitize_query(s, &mut out);
            return (out != s).then_some(out);
        }
        let (path, tail) = rest.split_at(rest.find(['?', '#']).unwrap_or(rest.len()));
        sanitize_path(path, &mut out);
        let (query, fragment) = match tail.strip_prefix('?') {
            Some(q) => {
                let (q, f) = q.split_at(q.find('#').unwrap_or(q.len()));
                (Some(q), f)
            }
            None => (None, tail),
        };
        if let Some(q) = query {
            out.push('?');
            sanitize_query(q, &mut out);
        }
        if let Some(f) = fragment.strip_prefix('#') {
            out.push('#');
            // OAuth's implicit flow puts tokens in the fragment.
            if f.contains('=') {
                sanitize_query(f, &mut out);
            } else {
                out.push_str(f);
            }
        }
    }
    (out != s).then_some(out)
}

fn sanitize_path(path: &str, out: &mut String) {
    for (i, seg) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        if looks_like_id(seg) {
            out.push('*');
        } else {
            out.push_str(seg);
        }
    }
}

fn sanitize_query(q: &str, out: &mut String) {
    for (i, param) in q.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        match param.split_once('=') {
            Some((name, value)) => {
                out.push_str(name);
                out.push('=');
                if !value.is_empty() {
                    out.push_str(MASK);
                }
            }
            // A bare parameter is kept when it is a plain word (`?debug`).
            None if param.bytes().all(|b| b.is_ascii_alphabetic() || b == b'_') => {
                out.push_str(param)
            }
            None => out.push_str(MASK),
        }
    }
}

/// Numbers, UUIDs, and tokens of 16+ characters that contain a digit.
pub fn looks_like_id(seg: &str) -> bool {
    if seg.is_empty() {
        return false;
    }
    let b = seg.as_bytes();
    if b.iter().all(u8::is_ascii_digit) {
        return true;
    }
    let is_uuid = b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        });
    if is_uuid {
        return true;
    }
    b.len() >= 16
        && b.iter().any(u8::is_ascii_digit)
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_')
}

/// URL paths inside a span name (`GET /users/123?x=1` → `GET /users/*?x=****`).
pub fn sanitize_span_name_urls(name: &str) -> Option<String> {
    if !name.contains('/') {
        return None;
    }
    let sanitized = |token: &str| {
        let urlish = token.starts_with('/') || token.contains("://");
        urlish.then(|| sanitize_url(token, UrlPart::Auto)).flatten()
    };
    // The copy is built from the first token that changes.
    let (first, new) = name
        .split(' ')
        .enumerate()
        .find_map(|(i, token)| sanitized(token).map(|t| (i, t)))?;
    let mut out = String::with_capacity(name.len());
    for (i, token) in name.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        match i.cmp(&first) {
            std::cmp::Ordering::Less => out.push_str(token),
            std::cmp::Ordering::Equal => out.push_str(&new),
            std::cmp::Ordering::Greater => match sanitized(token) {
                Some(t) => out.push_str(&t),
                None => out.push_str(token),
            },
        }
    }
    Some(out)
}

/// Replaces SQL literals (strings, numbers, hex/bit/escape strings,
/// dollar-quoted strings) with `?` and removes comments, keeping
/// identifiers (also `"quoted"` and `` `quoted` `` ones), keywords and
/// placeholders (`$1`, `?`, `:name`). None when nothing changed.
pub fn sanitize_sql(sql: &str) -> Option<String> {
    let b = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let mut i = 0;
    let is_ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80;
    // Last byte written that belongs to an identifier: a digit after it is
    // part of the name (`t1`), not a number.
    let mut prev_ident = false;
    while i < b.len() {
        let c = b[i];
        match c {
            b'\'' => {
                // E'…', X'…', B'…', N'…': drop the prefix letter too.
                let last = out.as_bytes().last().copied();
                if let Some(l) = last {
                    if matches!(l.to_ascii_uppercase(), b'E' | b'X' | b'B' | b'N') {
                        let before = out.len().checked_sub(2).map(|k| out.as_bytes()[k]);
                        if !before.is_some_and(is_ident) {
                            out.pop();
                        }
                    }
                }
                i = skip_quoted(b, i, b'\'', true);
                out.push('?');
                prev_ident = false;
                continue;
            }
            b'"' | b'`' => {
                let end = skip_quoted(b, i, c, false);
                out.push_str(&sql[i..end]);
                i = end;
                prev_ident = true;
                continue;
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                i = b[i..]
                    .iter()
                    .position(|&x| x == b'\n')
                    .map_or(b.len(), |p| i + p);
                continue;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i = sql[i + 2..].find("*/").map_or(b.len(), |p| i + 2 + p + 2);
                out.push(' ');
                prev_ident = false;
                continue;
            }
            b'$' if !prev_ident => {
                if let Some(end) = dollar_quoted_end(sql, i) {
                    out.push('?');
                    i = end;
                    prev_ident = false;
                    continue;
                }
            }
            b'0'..=b'9' if !prev_ident => {
                let mut j = i + 1;
                while j < b.len() {
                    let d = b[j];
                    let exp_sign = (d == b'+' || d == b'-') && matches!(b[j - 1], b'e' | b'E');
                    if d.is_ascii_hexdigit() || matches!(d, b'.' | b'x' | b'X' | b'_') || exp_sign {
                        j += 1;
                    } else {
                        break;
                    }
                }
                out.push('?');
                i = j;
                prev_ident = false;
                continue;
            }
            _ => {}
        }
        // Copy one UTF-8 character.
        let len = utf8_len(c);
        let end = (i + len).min(b.len());
        out.push_str(sql.get(i..end).unwrap_or(""));
        prev_ident = is_ident(c);
        i = end;
    }
    (out != sql).then_some(out)
}

fn utf8_len(c: u8) -> usize {
    match c {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

/// The index after the closing quote (doubled quotes escape; backslash too
/// for single quotes, as MySQL does), or the end of the text.
fn skip_quoted(b: &[u8], start: usize, q: u8, backslash: bool) -> usize {
    let mut i = start + 1;
    while i < b.len() {
        if backslash && b[i] == b'\\' {
            i += 2;
            continue;
        }
        if b[i] == q {
            if b.get(i + 1) == Some(&q) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    b.len()
}

/// `$tag$ … $tag$` (PostgreSQL), not `$1`.
fn dollar_quoted_end(sql: &str, start: usize) -> Option<usize> {
    let rest = &sql[start + 1..];
    let tag_len = rest.find('$')?;
    let tag = &rest[..tag_len];
    if !tag.bytes().all(|c| c.is_ascii_alphabetic() || c == b'_') {
        return None;
    }
    let delim = &sql[start..start + tag_len + 2];
    let body_start = start + tag_len + 2;
    Some(
        sql[body_start..]
            .find(delim)
            .map_or(sql.len(), |p| body_start + p + delim.len()),
    )
}
