//! Line parsers: JSON lines, logfmt, and regexes with named groups (nginx's
//! combined format is a built-in one). Each turns one line into fields or
//! says why it cannot; a line that cannot be parsed is never fatal.

use libhoney::{FieldName, Value};
use regex::Regex;

use crate::infer::{self, Names};

/// nginx's `combined` log format:
/// `$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"`,
/// with `$request` also split into `request_method`, `request_path` and
/// `request_protocol` when it has that shape. Each repetition stops at a
/// byte it cannot match, so the regex is one-pass: captures come from the
/// one-pass DFA, not the (several times slower) backtracker.
pub const NGINX_COMBINED: &str = r#"^(?P<remote_addr>\S+) - (?P<remote_user>\S+) \[(?P<time_local>[^\]]+)\] "(?P<request>[^"]*)" (?P<status>\d{3}) (?P<body_bytes_sent>\d+) "(?P<http_referer>[^"]*)" "(?P<http_user_agent>[^"]*)""#;

/// The largest regex program accepted (the `regex` crate's own default is
/// 10 MiB; a log pattern needs far less).
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Parsed fields of one line, in line order.
pub type Fields = Vec<(FieldName, Value)>;

/// A configured parser.
pub enum Parser {
    /// One JSON object per line; nested values kept as nested JSON.
    Json(Names),
    /// `key=value key2="quoted value" flag`; values inferred (numbers, booleans).
    Logfmt(Names),
    /// Named groups of the first regex that matches; values inferred. With
    /// `split_request` (the nginx preset), a `request` field of the form
    /// `METHOD PATH PROTOCOL` also gives the three parts.
    Regex {
        /// Tried in order, each with its group names (interned once).
        res: Vec<(Regex, Vec<Option<FieldName>>)>,
        /// Split `request` as nginx's preset does.
        split_request: bool,
    },
}

impl Parser {
    /// Compiles regexes for `--parser regex` / `nginx`.
    ///
    /// # Errors
    /// A regex that does not compile, is too large, or has no named group.
    pub fn regex(patterns: &[String]) -> Result<Parser, String> {
        if patterns.is_empty() {
            return Err("--parser regex needs at least one --regex with named groups".into());
        }
        let mut out = Vec::with_capacity(patterns.len());
        let mut names = Names::default();
        for p in patterns {
            let re = regex::RegexBuilder::new(p)
                .size_limit(REGEX_SIZE_LIMIT)
                .build()
                .map_err(|e| format!("invalid --regex {p:?}: {e}"))?;
            if re.capture_names().flatten().next().is_none() {
                return Err(format!(
                    "--regex {p:?} has no named group; name them like (?P<status>\\d+)"
                ));
            }
            let groups = re
                .capture_names()
                .map(|n| n.map(|n| names.get(n)))
                .collect();
            out.push((re, groups));
        }
        Ok(Parser::Regex {
            res: out,
            split_request: false,
        })
    }

    /// The nginx `combined` preset.
    pub fn nginx() -> Parser {
        match Parser::regex(&[NGINX_COMBINED.to_owned()]) {
            Ok(Parser::Regex { res, .. }) => Parser::Regex {
                res,
                split_request: true,
            },
            // The preset is a constant tested below; this cannot happen.
            _ => Parser::Json(Names::default()),
        }
    }

    /// Parses one line (without its line ending).
    ///
    /// # Errors
    /// Why the line is not in this format (for the error report).
    pub fn parse(&mut self, line: &[u8]) -> Result<Fields, String> {
        match self {
            Parser::Json(names) => infer::json_object(line, names),
            Parser::Logfmt(names) => logfmt(utf8(line)?, names),
            Parser::Regex { res, split_request } => {
                let line = utf8(line)?;
                for (re, groups) in res.iter() {
                    if let Some(caps) = re.captures(line) {
                        let mut out = Vec::with_capacity(caps.len() + 3);
                        for (i, name) in groups.iter().enumerate() {
                            if let (Some(name), Some(m)) = (name, caps.get(i)) {
                                out.push((name.clone(), infer::scalar(m.as_str())));
                                if *split_request && name.as_str() == "request" {
                                    split(m.as_str(), &mut out);
                                }
                            }
                        }
                        return Ok(out);
                    }
                }
                Err("no --regex matches".into())
            }
        }
    }
}

/// `GET /a HTTP/1.1` → `request_method`, `request_path`, `request_protocol`.
fn split(request: &str, out: &mut Fields) {
    let mut parts = request.splitn(3, ' ');
    if let (Some(m), Some(p), Some(v)) = (parts.next(), parts.next(), parts.next()) {
        if !m.is_empty() && !p.is_empty() && v.starts_with("HTTP/") && !v.contains(' ') {
            out.push(("request_method".into(), Value::String(m.to_owned().into())));
            out.push(("request_path".into(), Value::String(p.to_owned().into())));
            out.push((
                "request_protocol".into(),
                Value::String(v.to_owned().into()),
            ));
        }
    }
}

fn utf8(line: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(line).map_err(|e| format!("not UTF-8: {e}"))
}

/// logfmt: pairs separated by spaces; a value may be double-quoted with `\"`
/// and `\\` escapes; a bare key is `true`.
fn logfmt(line: &str, names: &mut Names) -> Result<Fields, String> {
    let b = line.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == b.len() {
            break;
        }
        let ks = i;
        while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'=' && b[i] != b'"' {
            i += 1;
        }
        if i == ks {
            return Err(format!("expected a key at byte {i}"));
        }
        let key = &line[ks..i];
        if i == b.len() || b[i].is_ascii_whitespace() {
            out.push((names.get_at(out.len(), key), Value::Bool(true)));
            continue;
        }
        if b[i] == b'"' {
            return Err(format!("unexpected quote in key at byte {i}"));
        }
        i += 1; // '='
        if i < b.len() && b[i] == b'"' {
            i += 1;
            let mut v = String::new();
            let mut closed = false;
            let mut seg = i;
            while i < b.len() {
                match b[i] {
                    b'\\' if i + 1 < b.len() => {
                        v.push_str(&line[seg..i]);
                        match b[i + 1] {
                            b'n' => v.push('\n'),
                            b't' => v.push('\t'),
                            c => v.push(c as char),
                        }
                        i += 2;
                        seg = i;
                        continue;
                    }
                    b'"' => {
                        v.push_str(&line[seg..i]);
                        i += 1;
                        closed = true;
                        break;
                    }
                    _ => i += 1,
                }
            }
            if !closed {
                return Err(format!("unterminated quoted value for key {key:?}"));
            }
            out.push((names.get_at(out.len(), key), Value::String(v.into())));
        } else {
            let vs = i;
            while i < b.len() && !b[i].is_ascii_whitespace() {
                i += 1;
            }
            out.push((names.get_at(out.len(), key), infer::scalar(&line[vs..i])));
        }
    }
    if out.is_empty() {
        return Err("no key=value pairs".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(f: &'a Fields, k: &str) -> Option<&'a Value> {
        f.iter().find(|(n, _)| n == k).map(|(_, v)| v)
    }

    #[test]
    fn logfmt_pairs() {
        let n = &mut Names::default();
        let f = logfmt(
            r#"level=info msg="hello \"world\"" n=3 t=1.5 ok=true bare path=/a=b"#,
            n,
        )
        .unwrap();
        assert_eq!(get(&f, "level"), Some(&Value::String("info".into())));
        assert_eq!(
            get(&f, "msg"),
            Some(&Value::String("hello \"world\"".into()))
        );
        assert_eq!(get(&f, "n"), Some(&Value::Int(3)));
        assert_eq!(get(&f, "t"), Some(&Value::Float(1.5)));
        assert_eq!(get(&f, "ok"), Some(&Value::Bool(true)));
        assert_eq!(get(&f, "bare"), Some(&Value::Bool(true)));
        assert_eq!(get(&f, "path"), Some(&Value::String("/a=b".into())));
        assert!(logfmt(r#"msg="unterminated"#, n).is_err());
        assert!(logfmt("=x", n).is_err());
        assert!(logfmt("   ", n).is_err());
        assert!(logfmt("a\"b=1", n).is_err());
        assert_eq!(logfmt("e=", n).unwrap()[0].1, Value::String("".into()));
    }

    #[test]
    fn nginx_preset() {
        let mut p = Parser::nginx();
        assert!(matches!(
            p,
            Parser::Regex {
                split_request: true,
                ..
            }
        ));
        let line = br#"192.168.1.7 - alice [10/Oct/2000:13:55:36 -0700] "GET /index.html?q=1 HTTP/1.1" 200 2326 "http://example.com/" "Mozilla/5.0 (X11)""#;
        let f = p.parse(line).unwrap();
        assert_eq!(
            get(&f, "remote_addr"),
            Some(&Value::String("192.168.1.7".into()))
        );
        assert_eq!(get(&f, "remote_user"), Some(&Value::String("alice".into())));
        assert_eq!(
            get(&f, "request_method"),
            Some(&Value::String("GET".into()))
        );
        assert_eq!(
            get(&f, "request_path"),
            Some(&Value::String("/index.html?q=1".into()))
        );
        assert_eq!(get(&f, "status"), Some(&Value::Int(200)));
        assert_eq!(get(&f, "body_bytes_sent"), Some(&Value::Int(2326)));
        assert_eq!(
            get(&f, "http_user_agent"),
            Some(&Value::String("Mozilla/5.0 (X11)".into()))
        );
        // A request line that is not "METHOD PATH PROTO" still parses.
        let odd = br#"10.0.0.1 - - [10/Oct/2000:13:55:36 +0000] "-" 400 0 "-" "-""#;
        let f = p.parse(odd).unwrap();
        assert!(get(&f, "request_method").is_none());
        assert_eq!(get(&f, "request"), Some(&Value::String("-".into())));
        assert_eq!(get(&f, "status"), Some(&Value::Int(400)));
        assert!(p.parse(b"garbage").is_err());
    }

    #[test]
    fn regex_validation() {
        assert!(Parser::regex(&[]).is_err());
        assert!(Parser::regex(&["(unclosed".into()]).is_err());
        assert!(Parser::regex(&["(\\d+)".into()]).is_err());
        let mut p = Parser::regex(&["^a (?P<x>\\d+)$".into(), "^(?P<y>.*)$".into()]).unwrap();
        assert_eq!(p.parse(b"a 5").unwrap(), vec![("x".into(), Value::Int(5))]);
        assert_eq!(
            p.parse(b"b").unwrap(),
            vec![("y".into(), Value::String("b".into()))]
        );
        assert!(p.parse(&[0xff, 0xfe]).is_err());
    }

    #[test]
    fn json_lines() {
        let mut p = Parser::Json(Names::default());
        assert_eq!(p.parse(br#"{"a":1}"#).unwrap().len(), 1);
        assert!(p.parse(b"not json").is_err());
        assert!(p.parse(b"42").is_err());
    }
}
