//! CoAP options (RFC 7252 §3.1, §5.4, §5.10): numbers, value formats, and the
//! typed owned form used when building messages.
//!
//! Decoding never fails here: a known option whose value does not fit its
//! format (length outside the §5.10 range, a string that is not UTF-8) is kept
//! as [`CoapOption::Other`], exactly as an unknown option is, so the bytes
//! round-trip and the endpoint can treat it as unrecognised (§5.4.3).

use std::fmt;

/// An option number (RFC 7252 §5.4.6, §12.2). Odd numbers are critical.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OptionNumber(pub u16);

/// The value format of an option (RFC 7252 §3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptionFormat {
    Empty,
    Opaque,
    Uint,
    String,
}

impl OptionNumber {
    pub const IF_MATCH: Self = Self(1);
    pub const URI_HOST: Self = Self(3);
    pub const ETAG: Self = Self(4);
    pub const IF_NONE_MATCH: Self = Self(5);
    /// RFC 7641 §2.
    pub const OBSERVE: Self = Self(6);
    pub const URI_PORT: Self = Self(7);
    pub const LOCATION_PATH: Self = Self(8);
    pub const URI_PATH: Self = Self(11);
    pub const CONTENT_FORMAT: Self = Self(12);
    pub const MAX_AGE: Self = Self(14);
    pub const URI_QUERY: Self = Self(15);
    pub const ACCEPT: Self = Self(17);
    pub const LOCATION_QUERY: Self = Self(20);
    /// RFC 7959 §2.1.
    pub const BLOCK2: Self = Self(23);
    /// RFC 7959 §2.1.
    pub const BLOCK1: Self = Self(27);
    /// RFC 7959 §4.
    pub const SIZE2: Self = Self(28);
    pub const PROXY_URI: Self = Self(35);
    pub const PROXY_SCHEME: Self = Self(39);
    pub const SIZE1: Self = Self(60);

    /// Critical options must be understood by the recipient (§5.4.1, §5.4.6).
    pub const fn is_critical(self) -> bool {
        self.0 & 1 == 1
    }

    /// Format and allowed value length range (inclusive) of the options this
    /// crate knows (RFC 7252 §5.10 table 4); `None` for unknown numbers.
    pub const fn spec(self) -> Option<(OptionFormat, usize, usize)> {
        use OptionFormat::*;
        Some(match self.0 {
            1 => (Opaque, 0, 8),
            3 => (String, 1, 255),
            4 => (Opaque, 1, 8),
            5 => (Empty, 0, 0),
            6 => (Uint, 0, 3),
            7 => (Uint, 0, 2),
            8 => (String, 0, 255),
            11 => (String, 0, 255),
            12 => (Uint, 0, 2),
            14 => (Uint, 0, 4),
            15 => (String, 0, 255),
            17 => (Uint, 0, 2),
            20 => (String, 0, 255),
            23 | 27 => (Uint, 0, 3),
            28 => (Uint, 0, 4),
            35 => (String, 1, 1034),
            39 => (String, 1, 255),
            60 => (Uint, 0, 4),
            _ => return None,
        })
    }
}

impl fmt::Display for OptionNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Decode a uint option value (RFC 7252 §3.2): big-endian, leading zero bytes
/// accepted. Values longer than 8 bytes yield `None`.
pub fn decode_uint(value: &[u8]) -> Option<u64> {
    if value.len() > 8 {
        return None;
    }
    Some(value.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
}

/// Minimal big-endian encoding of a uint option value (RFC 7252 §3.2: "the
/// sender SHOULD represent the integer with as few bytes as possible", zero is
/// the empty string). Returns the bytes and how many of the 8 are used (the
/// value is in the last `len` bytes).
pub fn encode_uint(v: u64) -> ([u8; 8], usize) {
    let bytes = v.to_be_bytes();
    let len = 8 - (v.leading_zeros() as usize / 8);
    (bytes, len)
}

/// One option of an owned [`super::Message`]: the options of RFC 7252 §5.10
/// typed, anything else (or a known option whose value does not fit its
/// format) kept raw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CoapOption {
    IfMatch(Vec<u8>),
    UriHost(String),
    ETag(Vec<u8>),
    IfNoneMatch,
    /// RFC 7641: registration 0 / deregistration 1 in a GET, the 24-bit
    /// sequence number in a notification.
    Observe(u32),
    UriPort(u16),
    LocationPath(String),
    UriPath(String),
    ContentFormat(u16),
    MaxAge(u32),
    UriQuery(String),
    Accept(u16),
    LocationQuery(String),
    /// RFC 7959 §2.2: NUM << 4 | M << 3 | SZX (see `super::block`).
    Block2(u32),
    Block1(u32),
    /// RFC 7959 §4: the representation's total size.
    Size2(u32),
    ProxyUri(String),
    ProxyScheme(String),
    Size1(u32),
    /// An unknown option, or a known one whose value is outside its format.
    Other {
        number: u16,
        value: Vec<u8>,
    },
}

fn string_in(value: &[u8], lo: usize, hi: usize) -> Option<String> {
    if value.len() < lo || value.len() > hi {
        return None;
    }
    std::str::from_utf8(value).ok().map(str::to_owned)
}

fn uint_in(value: &[u8], hi: usize) -> Option<u64> {
    if value.len() > hi {
        return None;
    }
    decode_uint(value)
}

impl CoapOption {
    /// The typed form of `(number, value)`; `Other` when the number is unknown
    /// or the value does not fit the option's format.
    pub fn from_raw(number: u16, value: &[u8]) -> CoapOption {
        let typed = match number {
            1 if value.len() <= 8 => Some(CoapOption::IfMatch(value.to_vec())),
            3 => string_in(value, 1, 255).map(CoapOption::UriHost),
            4 if (1..=8).contains(&value.len()) => Some(CoapOption::ETag(value.to_vec())),
            5 if value.is_empty() => Some(CoapOption::IfNoneMatch),
            6 => uint_in(value, 3).map(|v| CoapOption::Observe(v as u32)),
            7 => uint_in(value, 2)
                .and_then(|v| u16::try_from(v).ok())
                .map(CoapOption::UriPort),
            8 => string_in(value, 0, 255).map(CoapOption::LocationPath),
            11 => string_in(value, 0, 255).map(CoapOption::UriPath),
            12 => uint_in(value, 2)
                .and_then(|v| u16::try_from(v).ok())
                .map(CoapOption::ContentFormat),
            14 => uint_in(value, 4)
                .and_then(|v| u32::try_from(v).ok())
                .map(CoapOption::MaxAge),
            15 => string_in(value, 0, 255).map(CoapOption::UriQuery),
            17 => uint_in(value, 2)
                .and_then(|v| u16::try_from(v).ok())
                .map(CoapOption::Accept),
            20 => string_in(value, 0, 255).map(CoapOption::LocationQuery),
            23 => uint_in(value, 3).map(|v| CoapOption::Block2(v as u32)),
            27 => uint_in(value, 3).map(|v| CoapOption::Block1(v as u32)),
            28 => uint_in(value, 4)
                .and_then(|v| u32::try_from(v).ok())
                .map(CoapOption::Size2),
            35 => string_in(value, 1, 1034).map(CoapOption::ProxyUri),
            39 => string_in(value, 1, 255).map(CoapOption::ProxyScheme),
            60 => uint_in(value, 4)
                .and_then(|v| u32::try_from(v).ok())
                .map(CoapOption::Size1),
            _ => None,
        };
        typed.unwrap_or_else(|| CoapOption::Other {
            number,
            value: value.to_vec(),
        })
    }

    /// Re-type an option: `Other` holding a value a known option accepts
    /// becomes the typed variant, so equal messages have equal forms.
    pub fn canonical(self) -> CoapOption {
        match self {
            CoapOption::Other { number, value } => CoapOption::from_raw(number, &value),
            o => o,
        }
    }

    /// The option number.
    pub fn number(&self) -> OptionNumber {
        OptionNumber(match self {
            CoapOption::IfMatch(_) => 1,
            CoapOption::UriHost(_) => 3,
            CoapOption::ETag(_) => 4,
            CoapOption::IfNoneMatch => 5,
            CoapOption::Observe(_) => 6,
            CoapOption::UriPort(_) => 7,
            CoapOption::LocationPath(_) => 8,
            CoapOption::UriPath(_) => 11,
            CoapOption::ContentFormat(_) => 12,
            CoapOption::MaxAge(_) => 14,
            CoapOption::UriQuery(_) => 15,
            CoapOption::Accept(_) => 17,
            CoapOption::LocationQuery(_) => 20,
            CoapOption::Block2(_) => 23,
            CoapOption::Block1(_) => 27,
            CoapOption::Size2(_) => 28,
            CoapOption::ProxyUri(_) => 35,
            CoapOption::ProxyScheme(_) => 39,
            CoapOption::Size1(_) => 60,
            CoapOption::Other { number, .. } => *number,
        })
    }

    /// Call `f` with the encoded value bytes (uints minimally encoded).
    pub fn with_value<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            CoapOption::IfMatch(v) | CoapOption::ETag(v) | CoapOption::Other { value: v, .. } => {
                f(v)
            }
            CoapOption::IfNoneMatch => f(&[]),
            CoapOption::UriHost(s)
            | CoapOption::LocationPath(s)
            | CoapOption::UriPath(s)
            | CoapOption::UriQuery(s)
            | CoapOption::LocationQuery(s)
            | CoapOption::ProxyUri(s)
            | CoapOption::ProxyScheme(s) => f(s.as_bytes()),
            CoapOption::UriPort(v) | CoapOption::ContentFormat(v) | CoapOption::Accept(v) => {
                let (b, n) = encode_uint(u64::from(*v));
                f(&b[8 - n..])
            }
            CoapOption::MaxAge(v)
            | CoapOption::Size1(v)
            | CoapOption::Size2(v)
            | CoapOption::Observe(v)
            | CoapOption::Block1(v)
            | CoapOption::Block2(v) => {
                let (b, n) = encode_uint(u64::from(*v));
                f(&b[8 - n..])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uint_is_minimal_and_accepts_leading_zeros() {
        let (b, n) = encode_uint(0);
        assert_eq!(&b[8 - n..], &[] as &[u8]);
        let (b, n) = encode_uint(60);
        assert_eq!(&b[8 - n..], &[60]);
        let (b, n) = encode_uint(0x1234);
        assert_eq!(&b[8 - n..], &[0x12, 0x34]);
        assert_eq!(decode_uint(&[0, 0, 0x2a]), Some(42));
        assert_eq!(decode_uint(&[1; 9]), None);
    }

    #[test]
    fn known_options_decode_typed_and_bad_values_stay_raw() {
        assert_eq!(
            CoapOption::from_raw(12, &[0, 50]),
            CoapOption::ContentFormat(50)
        );
        assert_eq!(
            CoapOption::from_raw(11, b"temp"),
            CoapOption::UriPath("temp".into())
        );
        // Uri-Host must be 1..=255 bytes (§5.10): empty stays raw.
        assert_eq!(
            CoapOption::from_raw(3, b""),
            CoapOption::Other {
                number: 3,
                value: vec![]
            }
        );
        // Content-Format of 3 bytes is outside 0..=2.
        assert!(matches!(
            CoapOption::from_raw(12, &[1, 2, 3]),
            CoapOption::Other { .. }
        ));
        // Invalid UTF-8 in a string option stays raw.
        assert!(matches!(
            CoapOption::from_raw(11, &[0xff]),
            CoapOption::Other { .. }
        ));
        assert!(OptionNumber::URI_PATH.is_critical());
        assert!(!OptionNumber::CONTENT_FORMAT.is_critical());
    }
}
