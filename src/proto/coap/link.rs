//! CoRE Link Format (RFC 6690): the `/.well-known/core` payload, its
//! codec, and the query filter of §4.1.
//!
//! Read first: RFC 6690 §2 (the ABNF: `link-value *("," link-value)`,
//! `link-value = "<" URI-Reference ">" *(";" link-param)`), §3.1–3.2
//! (`rt`, `if`, `sz`), §4 (`/.well-known/core`), §4.1 (query filtering);
//! RFC 7252 §7.2.1 (`ct`), RFC 7641 §6 (`obs`).
//!
//! [`Link`] is the parsed form ([`parse`] / [`Link::write`]); the server
//! renders its resources from [`LinkAttrs`], which hold only the attributes
//! the simulator sets. No function here panics on any input: a malformed
//! listing is a [`LinkError`].

use std::fmt::Write as _;

use thiserror::Error;

/// Attributes a resource advertises in its link (RFC 6690 §3): all
/// optional; `obs` is a flag (RFC 7641 §6).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkAttrs {
    /// `rt`: resource type (§3.1), a space-separated list of tokens.
    pub rt: Option<String>,
    /// `if`: interface description (§3.2), e.g. `core.s` (a sensor).
    pub iface: Option<String>,
    /// `obs`: the resource is observable (RFC 7641 §6).
    pub obs: bool,
    /// `sz`: maximum size estimate in bytes (§3.3), for large resources.
    pub sz: Option<u32>,
}

/// One parsed link: the target and its parameters in order. A parameter
/// without a value (`;obs`) has `None`; quoted values are unquoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub href: String,
    pub params: Vec<(String, Option<String>)>,
}

impl Link {
    /// The first value of parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.as_deref())
    }

    /// Whether parameter `name` is present (with or without a value).
    pub fn has(&self, name: &str) -> bool {
        self.params.iter().any(|(n, _)| n == name)
    }

    /// Append this link in link format: `<href>;name;name="value"`.
    /// Values are written quoted unless they are a plain number (`ct`,
    /// `sz`); `"` and `\` inside values are escaped.
    pub fn write(&self, out: &mut String) {
        out.push('<');
        out.push_str(&self.href);
        out.push('>');
        for (n, v) in &self.params {
            out.push(';');
            out.push_str(n);
            if let Some(v) = v {
                out.push('=');
                write_value(out, v);
            }
        }
    }
}

fn write_value(out: &mut String, v: &str) {
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        out.push_str(v);
        return;
    }
    out.push('"');
    for c in v.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// Render a link for `href` (a path without the leading `/`) with
/// Content-Format `ct` and `attrs` (RFC 6690 §2), appended to `out`.
/// Parameter order: `rt`, `if`, `ct`, `sz`, `obs`.
pub fn write_link(out: &mut String, href: &str, ct: Option<u16>, attrs: Option<&LinkAttrs>) {
    out.push_str("</");
    out.push_str(href);
    out.push('>');
    if let Some(a) = attrs {
        if let Some(rt) = &a.rt {
            out.push_str(";rt=");
            write_value(out, rt);
        }
        if let Some(i) = &a.iface {
            out.push_str(";if=");
            write_value(out, i);
        }
    }
    if let Some(ct) = ct {
        let _ = write!(out, ";ct={ct}");
    }
    if let Some(a) = attrs {
        if let Some(sz) = a.sz {
            let _ = write!(out, ";sz={sz}");
        }
        if a.obs {
            out.push_str(";obs");
        }
    }
}

/// A malformed link-format document.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LinkError {
    #[error("byte {at}: expected '<' starting a link")]
    ExpectedLink { at: usize },
    #[error("byte {at}: unterminated URI reference")]
    UnterminatedHref { at: usize },
    #[error("byte {at}: empty parameter name")]
    EmptyParam { at: usize },
    #[error("byte {at}: unterminated quoted string")]
    UnterminatedQuote { at: usize },
    #[error("byte {at}: expected ',' or ';'")]
    ExpectedSeparator { at: usize },
    #[error("not UTF-8")]
    NotUtf8,
}

/// Parse a link-format document (RFC 6690 §2). An empty document has no
/// links. Whitespace is not allowed by the ABNF except inside quoted
/// strings; it is rejected like any other stray byte.
pub fn parse(doc: &[u8]) -> Result<Vec<Link>, LinkError> {
    let s = std::str::from_utf8(doc).map_err(|_| LinkError::NotUtf8)?;
    let b = s.as_bytes();
    let mut links = Vec::new();
    let mut i = 0;
    if b.is_empty() {
        return Ok(links);
    }
    loop {
        if b.get(i) != Some(&b'<') {
            return Err(LinkError::ExpectedLink { at: i });
        }
        let start = i + 1;
        let end = s[start..]
            .find('>')
            .map(|k| start + k)
            .ok_or(LinkError::UnterminatedHref { at: i })?;
        let mut link = Link {
            href: s[start..end].to_owned(),
            params: Vec::new(),
        };
        i = end + 1;
        while b.get(i) == Some(&b';') {
            i += 1;
            let ns = i;
            while i < b.len() && !matches!(b[i], b'=' | b';' | b',') {
                i += 1;
            }
            if i == ns {
                return Err(LinkError::EmptyParam { at: ns });
            }
            let name = s[ns..i].to_owned();
            let value = if b.get(i) == Some(&b'=') {
                i += 1;
                if b.get(i) == Some(&b'"') {
                    let q = i;
                    i += 1;
                    let mut v = String::new();
                    loop {
                        match b.get(i) {
                            None => return Err(LinkError::UnterminatedQuote { at: q }),
                            Some(b'"') => {
                                i += 1;
                                break;
                            }
                            Some(b'\\') if i + 1 < b.len() => {
                                let c = s[i + 1..].chars().next().unwrap_or('\\');
                                v.push(c);
                                i += 1 + c.len_utf8();
                            }
                            Some(_) => {
                                let c = s[i..].chars().next().unwrap_or('\u{fffd}');
                                v.push(c);
                                i += c.len_utf8();
                            }
                        }
                    }
                    Some(v)
                } else {
                    let vs = i;
                    while i < b.len() && !matches!(b[i], b';' | b',') {
                        i += 1;
                    }
                    Some(s[vs..i].to_owned())
                }
            } else {
                None
            };
            link.params.push((name, value));
        }
        links.push(link);
        match b.get(i) {
            None => return Ok(links),
            Some(b',') => i += 1,
            Some(_) => return Err(LinkError::ExpectedSeparator { at: i }),
        }
    }
}

/// A query filter on `/.well-known/core` (RFC 6690 §4.1): `name=value`,
/// where a value ending in `*` matches any value with that prefix. Several
/// query options must all match (we support more than the one the RFC
/// requires). `href` matches the link target (with its leading `/`);
/// `rt` and `if` match any one of their space-separated values (§3.1:
/// "rt" may hold several types); any other name matches the parameter's
/// value as a whole.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    terms: Vec<(String, String)>,
}

impl Filter {
    /// The filter of the Uri-Query values `queries` (each `name=value`; a
    /// query without `=` filters on the parameter being present with any
    /// value). No query: matches every link.
    pub fn from_queries<'a>(queries: impl IntoIterator<Item = &'a str>) -> Filter {
        let terms = queries
            .into_iter()
            .map(|q| match q.split_once('=') {
                Some((n, v)) => (n.to_owned(), v.to_owned()),
                None => (q.to_owned(), "*".to_owned()),
            })
            .collect();
        Filter { terms }
    }

    /// True when there is no term (everything matches).
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Whether the link of `href` (a path without the leading `/`) with
    /// Content-Format `ct` and `attrs` passes every term.
    pub fn matches(&self, href: &str, ct: Option<u16>, attrs: Option<&LinkAttrs>) -> bool {
        self.terms.iter().all(|(n, pat)| match n.as_str() {
            "href" => {
                // the target as rendered: "/" + path
                let p = pat.strip_prefix('/').unwrap_or(pat);
                value_matches(p, href)
            }
            "rt" => attrs
                .and_then(|a| a.rt.as_deref())
                .is_some_and(|v| v.split(' ').any(|t| value_matches(pat, t))),
            "if" => attrs
                .and_then(|a| a.iface.as_deref())
                .is_some_and(|v| v.split(' ').any(|t| value_matches(pat, t))),
            "ct" => ct.is_some_and(|c| value_matches(pat, &c.to_string())),
            "sz" => attrs
                .and_then(|a| a.sz)
                .is_some_and(|s| value_matches(pat, &s.to_string())),
            "obs" => attrs.is_some_and(|a| a.obs),
            _ => false,
        })
    }

    /// Whether a parsed link passes every term (the client side of the
    /// same rule, e.g. to check a server's answer).
    pub fn matches_link(&self, link: &Link) -> bool {
        self.terms.iter().all(|(n, pat)| {
            if n == "href" {
                let h = link.href.strip_prefix('/').unwrap_or(&link.href);
                let p = pat.strip_prefix('/').unwrap_or(pat);
                return value_matches(p, h);
            }
            link.params.iter().any(|(pn, v)| {
                pn == n
                    && match v {
                        None => pat == "*",
                        Some(v) if n == "rt" || n == "if" => {
                            v.split(' ').any(|t| value_matches(pat, t))
                        }
                        Some(v) => value_matches(pat, v),
                    }
            })
        })
    }
}

/// RFC 6690 §4.1: equal, or — a pattern ending in `*` — a prefix match.
fn value_matches(pat: &str, v: &str) -> bool {
    match pat.strip_suffix('*') {
        Some(prefix) => v.starts_with(prefix),
        None => pat == v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sensor(rt: &str) -> LinkAttrs {
        LinkAttrs {
            rt: Some(rt.into()),
            iface: Some("core.s".into()),
            obs: true,
            sz: None,
        }
    }

    #[test]
    fn write_then_parse_round_trips() {
        let mut s = String::new();
        write_link(
            &mut s,
            "room/120/temp",
            Some(0),
            Some(&sensor("temperature-c")),
        );
        s.push(',');
        write_link(
            &mut s,
            "big",
            Some(42),
            Some(&LinkAttrs {
                sz: Some(4096),
                ..Default::default()
            }),
        );
        s.push(',');
        write_link(&mut s, "plain", None, None);
        assert_eq!(
            s,
            "</room/120/temp>;rt=\"temperature-c\";if=\"core.s\";ct=0;obs,\
             </big>;ct=42;sz=4096,</plain>"
        );
        let links = parse(s.as_bytes()).expect("parses");
        assert_eq!(links.len(), 3);
        assert_eq!(links[0].href, "/room/120/temp");
        assert_eq!(links[0].param("rt"), Some("temperature-c"));
        assert_eq!(links[0].param("if"), Some("core.s"));
        assert_eq!(links[0].param("ct"), Some("0"));
        assert!(links[0].has("obs") && links[0].param("obs").is_none());
        assert_eq!(links[1].param("sz"), Some("4096"));
        assert!(links[2].params.is_empty());
        // and the parsed form writes back to the same bytes
        let mut again = String::new();
        for (k, l) in links.iter().enumerate() {
            if k > 0 {
                again.push(',');
            }
            l.write(&mut again);
        }
        assert_eq!(again, s);
    }

    #[test]
    fn rfc6690_figure_parses() {
        // RFC 6690 §5 example (one of its listings)
        let doc = b"</sensors/temp>;rt=\"temperature-c\";if=\"sensor\",\
                    </sensors/light>;rt=\"light-lux\";if=\"sensor\"";
        let links = parse(doc).expect("parses");
        assert_eq!(links.len(), 2);
        assert_eq!(links[1].href, "/sensors/light");
        assert_eq!(links[1].param("rt"), Some("light-lux"));
        let f = Filter::from_queries(["rt=light*"]);
        assert!(!f.matches_link(&links[0]) && f.matches_link(&links[1]));
    }

    #[test]
    fn quoted_values_escape_and_unescape() {
        let l = Link {
            href: "/a".into(),
            params: vec![("title".into(), Some("say \"hi\" \\o/".into()))],
        };
        let mut s = String::new();
        l.write(&mut s);
        assert_eq!(s, r#"</a>;title="say \"hi\" \\o/""#);
        assert_eq!(parse(s.as_bytes()).expect("parses"), vec![l]);
    }

    #[test]
    fn malformed_documents_are_errors_not_panics() {
        for (doc, want) in [
            (&b"/a>"[..], LinkError::ExpectedLink { at: 0 }),
            (b"</a", LinkError::UnterminatedHref { at: 0 }),
            (b"</a>;", LinkError::EmptyParam { at: 5 }),
            (b"</a>;rt=\"x", LinkError::UnterminatedQuote { at: 8 }),
            (b"</a> ", LinkError::ExpectedSeparator { at: 4 }),
            (b"</a>,", LinkError::ExpectedLink { at: 5 }),
            (b"\xff", LinkError::NotUtf8),
        ] {
            assert_eq!(parse(doc), Err(want), "{doc:?}");
        }
        assert_eq!(parse(b""), Ok(vec![]));
        // a trailing backslash inside a quote
        assert!(parse(b"</a>;t=\"\\").is_err());
    }

    #[test]
    fn filter_exact_prefix_and_attribute_kinds() {
        let a = sensor("temperature-c");
        let f = |q: &str| Filter::from_queries([q]);
        assert!(f("rt=temperature-c").matches("t", Some(0), Some(&a)));
        assert!(!f("rt=temperature").matches("t", Some(0), Some(&a)));
        assert!(f("rt=temp*").matches("t", Some(0), Some(&a)));
        assert!(f("rt=*").matches("t", Some(0), Some(&a)));
        assert!(!f("rt=hum*").matches("t", Some(0), Some(&a)));
        assert!(f("if=core.s").matches("t", Some(0), Some(&a)));
        assert!(!f("if=core.a").matches("t", Some(0), Some(&a)));
        assert!(f("href=/room/1*").matches("room/12/t", None, None));
        assert!(f("href=room/12/t").matches("room/12/t", None, None));
        assert!(!f("href=/room/2*").matches("room/12/t", None, None));
        assert!(f("ct=0").matches("t", Some(0), None));
        assert!(!f("ct=0").matches("t", None, None));
        assert!(f("obs").matches("t", None, Some(&a)));
        // no attributes: an rt filter does not match
        assert!(!f("rt=*").matches("t", None, None));
        // several terms must all hold; none: everything matches
        let both = Filter::from_queries(["rt=temp*", "if=core.a"]);
        assert!(!both.matches("t", Some(0), Some(&a)));
        assert!(Filter::default().matches("t", None, None));
        // rt holding several types matches any of them
        let multi = sensor("temperature-c sensor");
        assert!(f("rt=sensor").matches("t", None, Some(&multi)));
    }
}
