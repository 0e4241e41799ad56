//! The resource store behind an endpoint's server side (RFC 7252 §5.8).
//!
//! Resources are keyed by their path (Uri-Path segments joined by `/`) in a
//! `BTreeMap`, so any listing is in a stable order. The map allocates nothing
//! until the first resource is stored, so client-only endpoints cost nothing.

use std::collections::BTreeMap;

use super::code::{Code, MessageType, Method};
use super::codec::{write_header, write_payload, MessageRef, OptionWriter, Token};
use super::option::{encode_uint, OptionNumber};

/// A stored representation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// Content-Format of the stored value, if the request carried one.
    pub content_format: Option<u16>,
    /// The last value PUT or POSTed.
    pub value: Vec<u8>,
}

/// The response the server sends for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: Code,
    pub content_format: Option<u16>,
    pub payload: Vec<u8>,
}

impl Reply {
    fn bare(code: Code) -> Self {
        Reply {
            code,
            content_format: None,
            payload: Vec::new(),
        }
    }
}

/// Path → resource.
#[derive(Debug, Clone, Default)]
pub struct ResourceStore {
    resources: BTreeMap<String, Resource>,
}

impl ResourceStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The resource at `path`.
    pub fn get(&self, path: &str) -> Option<&Resource> {
        self.resources.get(path)
    }

    /// Store `value` at `path` (for seeding a server).
    pub fn insert(&mut self, path: impl Into<String>, content_format: Option<u16>, value: Vec<u8>) {
        self.resources.insert(
            path.into(),
            Resource {
                content_format,
                value,
            },
        );
    }

    /// All resources, ordered by path.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Resource)> {
        self.resources.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Number of resources.
    pub fn len(&self) -> usize {
        self.resources.len()
    }

    /// True when nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.resources.is_empty()
    }

    /// Apply one request and return the response:
    /// GET → 2.05 Content with the stored value or 4.04 Not Found (§5.8.1);
    /// PUT/POST → store, 2.01 Created if the path was new, else 2.04 Changed
    /// (§5.8.2, §5.8.3); DELETE → remove, 2.02 Deleted (§5.8.4, idempotent).
    pub fn apply(
        &mut self,
        method: Method,
        path: &str,
        content_format: Option<u16>,
        payload: &[u8],
    ) -> Reply {
        match method {
            Method::Get => match self.resources.get(path) {
                Some(r) => Reply {
                    code: Code::CONTENT,
                    content_format: r.content_format,
                    payload: r.value.clone(),
                },
                None => Reply::bare(Code::NOT_FOUND),
            },
            // an existing resource is updated in place (no allocation)
            Method::Put | Method::Post => match self.resources.get_mut(path) {
                Some(r) => {
                    r.content_format = content_format;
                    r.value.clear();
                    r.value.extend_from_slice(payload);
                    Reply::bare(Code::CHANGED)
                }
                None => {
                    let res = Resource {
                        content_format,
                        value: payload.to_vec(),
                    };
                    self.resources.insert(path.to_owned(), res);
                    Reply::bare(Code::CREATED)
                }
            },
            Method::Delete => {
                self.resources.remove(path);
                Reply::bare(Code::DELETED)
            }
        }
    }
}

/// Outcome of serving one (non-duplicate) request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Served {
    /// Applied to the store; the application is told.
    Applied {
        reply: Reply,
        method: Method,
        path: String,
        content_format: Option<u16>,
    },
    /// Not applied: 4.02 Bad Option, 5.05 Proxying Not Supported or 4.05
    /// Method Not Allowed.
    Rejected(Reply),
}

/// Options the server side understands; any other critical option in a
/// request is answered 4.02 Bad Option (§5.4.1).
const RECOGNISED: [OptionNumber; 7] = [
    OptionNumber::URI_HOST,
    OptionNumber::URI_PORT,
    OptionNumber::URI_PATH,
    OptionNumber::CONTENT_FORMAT,
    OptionNumber::URI_QUERY,
    OptionNumber::ACCEPT,
    OptionNumber::SIZE1,
];

/// Check a request's method and options and apply it to `store`:
/// unknown method → 4.05 (§5.8); an unrecognised or malformed critical
/// option → 4.02 (§5.4.1, §5.4.3), Proxy-Uri/Proxy-Scheme → 5.05 (§5.10.2);
/// otherwise [`ResourceStore::apply`].
/// `path` is a (recycled) buffer for the request's path; it is cleared first.
pub(crate) fn serve(store: &mut ResourceStore, m: &MessageRef<'_>, mut path: String) -> Served {
    let Some(method) = Method::from_code(m.code) else {
        return Served::Rejected(Reply::bare(Code::METHOD_NOT_ALLOWED));
    };
    let bad = m.options().find(|o| {
        let n = OptionNumber(o.number);
        let ok_len = n
            .spec()
            .is_some_and(|(_, lo, hi)| (lo..=hi).contains(&o.value.len()));
        n.is_critical() && !(RECOGNISED.contains(&n) && ok_len)
    });
    if let Some(o) = bad {
        let proxy =
            o.number == OptionNumber::PROXY_URI.0 || o.number == OptionNumber::PROXY_SCHEME.0;
        let code = if proxy {
            Code::PROXYING_NOT_SUPPORTED
        } else {
            Code::BAD_OPTION
        };
        return Served::Rejected(Reply::bare(code));
    }
    path.clear();
    m.write_path(&mut path);
    let content_format = m.content_format();
    let reply = store.apply(method, &path, content_format, m.payload);
    Served::Applied {
        reply,
        method,
        path,
        content_format,
    }
}

/// Encode a response message (§5.2): header, Content-Format, payload.
pub(crate) fn encode_response(
    out: &mut Vec<u8>,
    ty: MessageType,
    mid: u16,
    token: Token,
    reply: &Reply,
) {
    write_header(out, ty, reply.code, mid, &token);
    if let Some(cf) = reply.content_format {
        let (b, n) = encode_uint(u64::from(cf));
        // Content-Format of ≤ 2 bytes cannot exceed any length limit.
        let _ = OptionWriter::new().push(out, OptionNumber::CONTENT_FORMAT.0, &b[8 - n..]);
    }
    write_payload(out, &reply.payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_get_delete_cycle() {
        let mut s = ResourceStore::new();
        assert_eq!(s.apply(Method::Get, "a/b", None, b"").code, Code::NOT_FOUND);
        assert_eq!(
            s.apply(Method::Put, "a/b", Some(0), b"21.5").code,
            Code::CREATED
        );
        assert_eq!(
            s.apply(Method::Post, "a/b", Some(0), b"22.0").code,
            Code::CHANGED
        );
        let r = s.apply(Method::Get, "a/b", None, b"");
        assert_eq!(
            (r.code, r.content_format, r.payload.as_slice()),
            (Code::CONTENT, Some(0), &b"22.0"[..])
        );
        assert_eq!(
            s.apply(Method::Delete, "a/b", None, b"").code,
            Code::DELETED
        );
        assert!(s.is_empty());
    }
}
