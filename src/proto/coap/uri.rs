//! `coap://` and `coaps://` URIs to request options and back: RFC 7252
//! §6.4 ("Decomposing URIs into Options") and §6.5 ("Composing URIs from
//! Options").
//!
//! Decomposing takes an absolute URI (no reference resolution: a relative
//! one is an error, as is a fragment or another scheme), lowercases the
//! host, decodes percent-encodings in host, path segments and query
//! arguments. The options leave out what the request's destination already
//! says: Uri-Host when the host is the destination's, Uri-Port when the
//! port is the destination's (by default the URI's own port, 5683 for
//! `coap`, 5684 for `coaps`). Composing percent-encodes what a segment or
//! argument may not hold literally (RFC 3986 `pchar`; a query argument may
//! also hold "/" and "?", never "&") and leaves out the default port.

use super::option::CoapOption;
use std::fmt::Write as _;

/// The default port of `coap` (RFC 7252 §6.1).
pub const COAP_PORT: u16 = 5683;
/// The default port of `coaps` (§6.2).
pub const COAPS_PORT: u16 = 5684;

/// Why a string is not a CoAP URI this decomposition accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    #[error("not an absolute URI (no scheme): {0:?}")]
    NotAbsolute(String),
    #[error("scheme {0:?} is neither coap nor coaps")]
    Scheme(String),
    #[error("a CoAP URI has no fragment (RFC 7252 §6.4 step 4)")]
    Fragment,
    #[error("no host")]
    NoHost,
    #[error("bad port {0:?}")]
    Port(String),
    #[error("bad percent-encoding in {0:?}")]
    Percent(String),
    #[error("{0:?} is longer than 255 bytes (the option's limit)")]
    TooLong(String),
}

/// A decomposed CoAP URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uri {
    /// `coaps`.
    pub secure: bool,
    /// Lowercased, percent-decoded; an IPv6 literal without brackets.
    pub host: String,
    /// The explicit port, or the scheme's default.
    pub port: u16,
    /// Decoded path segments (none for an empty path or "/").
    pub path: Vec<String>,
    /// Decoded query arguments.
    pub query: Vec<String>,
}

impl Uri {
    /// Decompose `s` (§6.4 steps 1–8).
    pub fn parse(s: &str) -> Result<Uri, UriError> {
        let (scheme, rest) = s
            .split_once(':')
            .filter(|(sc, _)| {
                sc.starts_with(|c: char| c.is_ascii_alphabetic())
                    && sc
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
            })
            .ok_or_else(|| UriError::NotAbsolute(s.to_string()))?;
        let secure = match scheme.to_ascii_lowercase().as_str() {
            "coap" => false,
            "coaps" => true,
            _ => return Err(UriError::Scheme(scheme.to_string())),
        };
        if rest.contains('#') {
            return Err(UriError::Fragment);
        }
        let rest = rest.strip_prefix("//").ok_or(UriError::NoHost)?;
        let (authority, tail) = match rest.find(['/', '?']) {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        // userinfo is not part of a CoAP URI's options: drop it
        let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or(UriError::NoHost)?;
            (h.to_string(), after.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (hostport.to_string(), None),
            }
        };
        if host.is_empty() {
            return Err(UriError::NoHost);
        }
        // decoded first, then lowercased: "%51" is "Q", a host is "q"
        let host = decode(&host)?.to_ascii_lowercase();
        let default = if secure { COAPS_PORT } else { COAP_PORT };
        let port = match port {
            None | Some("") => default,
            Some(p) if p.bytes().all(|b| b.is_ascii_digit()) && p.len() <= 5 => p
                .parse::<u16>()
                .map_err(|_| UriError::Port(p.to_string()))?,
            Some(p) => return Err(UriError::Port(p.to_string())),
        };
        let (path, query) = match tail.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (tail, None),
        };
        let path = if path.is_empty() || path == "/" {
            Vec::new()
        } else {
            // §6.4 step 8: only the leading "/" goes; every segment after
            // it, empty ones included, is a Uri-Path option
            path.strip_prefix('/')
                .unwrap_or(path)
                .split('/')
                .map(decode)
                .collect::<Result<Vec<_>, _>>()?
        };
        let query = match query {
            None => Vec::new(),
            Some(q) => q.split('&').map(decode).collect::<Result<Vec<_>, _>>()?,
        };
        for s in std::iter::once(&host).chain(&path).chain(&query) {
            if s.len() > 255 {
                return Err(UriError::TooLong(s.clone()));
            }
        }
        Ok(Uri {
            secure,
            host,
            port,
            path,
            query,
        })
    }

    /// The request options (§6.4 steps 5–8), for a request sent to a
    /// destination whose host is `dest_host` (an IP literal or name; Uri-Host
    /// is left out when it equals the URI's host) and whose port is
    /// `dest_port` (Uri-Port left out when equal).
    pub fn options(&self, dest_host: Option<&str>, dest_port: u16) -> Vec<CoapOption> {
        let mut v = Vec::new();
        if dest_host.is_none_or(|d| !d.eq_ignore_ascii_case(&self.host)) {
            v.push(CoapOption::UriHost(self.host.clone()));
        }
        if self.port != dest_port {
            v.push(CoapOption::UriPort(self.port));
        }
        v.extend(self.path.iter().cloned().map(CoapOption::UriPath));
        v.extend(self.query.iter().cloned().map(CoapOption::UriQuery));
        v
    }

    /// Compose the URI (§6.5) from the request options `opts` sent to
    /// `dest_host:dest_port`: Uri-Host / Uri-Port when present, else the
    /// destination's; the default port left out.
    pub fn from_options(secure: bool, dest_host: &str, dest_port: u16, opts: &[CoapOption]) -> Uri {
        let mut u = Uri {
            secure,
            host: dest_host.to_ascii_lowercase(),
            port: dest_port,
            path: Vec::new(),
            query: Vec::new(),
        };
        for o in opts {
            match o {
                CoapOption::UriHost(h) => u.host = h.to_ascii_lowercase(),
                CoapOption::UriPort(p) => u.port = *p,
                CoapOption::UriPath(p) => u.path.push(p.clone()),
                CoapOption::UriQuery(q) => u.query.push(q.clone()),
                _ => {}
            }
        }
        u
    }
}

impl std::fmt::Display for Uri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = String::from(if self.secure { "coaps://" } else { "coap://" });
        // an IPv6 literal goes in brackets; any other host is a reg-name,
        // its ':' and brackets percent-encoded so it parses back the same
        let v6 = |c: u8| c.is_ascii_hexdigit() || c == b':' || c == b'.';
        if self.host.contains(':') && self.host.bytes().all(v6) {
            let _ = write!(s, "[{}]", self.host);
        } else {
            encode_into(&mut s, &self.host, |c| is_unreserved(c) || is_sub_delim(c));
        }
        let default = if self.secure { COAPS_PORT } else { COAP_PORT };
        if self.port != default {
            let _ = write!(s, ":{}", self.port);
        }
        if self.path.is_empty() {
            s.push('/');
        }
        for seg in &self.path {
            s.push('/');
            encode_into(&mut s, seg, is_pchar);
        }
        for (i, q) in self.query.iter().enumerate() {
            s.push(if i == 0 { '?' } else { '&' });
            encode_into(&mut s, q, |c| {
                (is_pchar(c) || c == b'/' || c == b'?') && c != b'&'
            });
        }
        f.write_str(&s)
    }
}

fn is_unreserved(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"-._~".contains(&c)
}

fn is_sub_delim(c: u8) -> bool {
    b"!$&'()*+,;=".contains(&c)
}

/// RFC 3986 `pchar` (a path segment's literal characters).
fn is_pchar(c: u8) -> bool {
    is_unreserved(c) || is_sub_delim(c) || c == b':' || c == b'@'
}

fn encode_into(out: &mut String, s: &str, literal: impl Fn(u8) -> bool) {
    for &b in s.as_bytes() {
        if literal(b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// Decode percent-encodings; the result must be UTF-8 (the options are
/// strings).
fn decode(s: &str) -> Result<String, UriError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| UriError::Percent(s.to_string()))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| UriError::Percent(s.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_that_is_not_an_ipv6_literal_composes_percent_encoded() {
        // Found by the coap_uri fuzz target: a reg-name holding ':' (here
        // from "coap://\x1b2001:db8::1]:61616/t", whose last ':' is the
        // port's) was written in brackets unencoded, "[\x1b2001:db8::1]]",
        // which parses to another host and the default port.
        let u = Uri::parse("coap://\u{1b}2001:db8::1]:61616/t").unwrap();
        assert_eq!(u.host, "\u{1b}2001:db8::1]");
        assert_eq!(u.port, 61616);
        assert_eq!(u.to_string(), "coap://%1B2001%3Adb8%3A%3A1%5D:61616/t");
        assert_eq!(Uri::parse(&u.to_string()).unwrap(), u);
        let h = Uri::parse("coap://a%3A%5D/").unwrap();
        assert_eq!(h.host, "a:]");
        assert_eq!(Uri::parse(&h.to_string()).unwrap(), h);
        // IPv6 literals keep their brackets
        let v6 = Uri::parse("coap://[::ffff:10.0.0.1]:1/").unwrap();
        assert_eq!(v6.to_string(), "coap://[::ffff:10.0.0.1]:1/");
    }

    #[test]
    fn a_percent_encoded_host_is_lowercased_after_decoding() {
        // Found by the coap_uri fuzz target: lowercasing before decoding
        // left "%51" as "Q" in the host, which composes to "coap://q…"
        // on the way back.
        let u = Uri::parse("coap://198%51.100.1/").unwrap();
        assert_eq!(u.host, "198q.100.1");
        assert_eq!(Uri::parse(&u.to_string()).unwrap(), u);
    }

    #[test]
    fn empty_leading_path_segments_are_kept() {
        // RFC 7252 §6.4 step 8, its own example: only the first "/" of the
        // path goes, so "//%2F//" is four Uri-Path options. Found by the
        // coap_uri fuzz target: all leading slashes were trimmed, so
        // "coap://h//" gave one empty segment and composed back to
        // "coap://h/" (no Uri-Path at all).
        let u = Uri::parse("coap://198.51.100.1:61616//%2F//?%2F%2F&?%26").unwrap();
        assert_eq!(u.path, ["", "/", "", ""]);
        assert_eq!(u.query, ["//", "?&"]);
        let h = Uri::parse("coap://h//").unwrap();
        assert_eq!(h.path, ["", ""]);
        assert_eq!(Uri::parse(&h.to_string()).unwrap(), h);
    }

    #[test]
    fn rfc_7252_section_6_3_equivalent_uris_give_the_same_options() {
        // §6.3: these three are equivalent
        let a = Uri::parse("coap://example.com:5683/~sensors/temp.xml").unwrap();
        let b = Uri::parse("coap://EXAMPLE.com/%7Esensors/temp.xml").unwrap();
        let c = Uri::parse("coap://EXAMPLE.com:/%7esensors/temp.xml").unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(
            a.options(None, 5683),
            vec![
                CoapOption::UriHost("example.com".into()),
                CoapOption::UriPath("~sensors".into()),
                CoapOption::UriPath("temp.xml".into()),
            ]
        );
        assert_eq!(a.to_string(), "coap://example.com/~sensors/temp.xml");
    }

    #[test]
    fn the_course_example_round_trips() {
        let u = Uri::parse("coap://building-xyz/rooms/120/temperature?unit=c&avg=5%20min").unwrap();
        assert_eq!(u.path, ["rooms", "120", "temperature"]);
        assert_eq!(u.query, ["unit=c", "avg=5 min"]);
        let opts = u.options(Some("building-xyz"), 5683);
        assert_eq!(opts.len(), 5, "no Uri-Host, no Uri-Port: {opts:?}");
        let back = Uri::from_options(false, "building-xyz", 5683, &opts);
        assert_eq!(back, u);
        assert_eq!(
            back.to_string(),
            "coap://building-xyz/rooms/120/temperature?unit=c&avg=5%20min"
        );
    }

    #[test]
    fn ports_ipv6_and_empty_paths() {
        let u = Uri::parse("coaps://[2001:db8::1]:61616").unwrap();
        assert!(u.secure);
        assert_eq!(u.host, "2001:db8::1");
        assert_eq!(u.port, 61616);
        assert!(u.path.is_empty());
        assert_eq!(
            u.options(Some("2001:db8::1"), 5684),
            vec![CoapOption::UriPort(61616)]
        );
        assert_eq!(u.to_string(), "coaps://[2001:db8::1]:61616/");
        assert_eq!(Uri::parse("coap://h/").unwrap().path, Vec::<String>::new());
        // a segment holding "/" and "&" is encoded on the way out
        let u = Uri {
            secure: false,
            host: "h".into(),
            port: 5683,
            path: vec!["a/b".into()],
            query: vec!["x=1&2".into()],
        };
        assert_eq!(u.to_string(), "coap://h/a%2Fb?x=1%262");
        assert_eq!(Uri::parse(&u.to_string()).unwrap(), u);
    }

    #[test]
    fn what_is_not_a_coap_uri_is_an_error() {
        assert!(matches!(
            Uri::parse("/rooms/120"),
            Err(UriError::NotAbsolute(_))
        ));
        assert!(matches!(Uri::parse("http://h/x"), Err(UriError::Scheme(_))));
        assert_eq!(Uri::parse("coap://h/x#frag"), Err(UriError::Fragment));
        assert!(matches!(
            Uri::parse("coap://h:99999/"),
            Err(UriError::Port(_))
        ));
        assert!(matches!(Uri::parse("coap://h:x/"), Err(UriError::Port(_))));
        assert!(matches!(
            Uri::parse("coap://h/%zz"),
            Err(UriError::Percent(_))
        ));
        assert!(matches!(
            Uri::parse("coap://h/%ff"),
            Err(UriError::Percent(_))
        ));
        assert_eq!(Uri::parse("coap:///x"), Err(UriError::NoHost));
        let long = format!("coap://h/{}", "a".repeat(256));
        assert!(matches!(Uri::parse(&long), Err(UriError::TooLong(_))));
    }
}
