//! CoAP message types and codes (RFC 7252 §3, §5.9, §12.1).

use std::fmt;

/// The 2-bit message type of the header (RFC 7252 §3, §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MessageType {
    /// Confirmable (0): retransmitted until acknowledged (§4.2).
    Con,
    /// Non-confirmable (1): sent once (§4.3).
    Non,
    /// Acknowledgement (2).
    Ack,
    /// Reset (3).
    Rst,
}

impl MessageType {
    /// The 2-bit wire value.
    pub const fn bits(self) -> u8 {
        match self {
            MessageType::Con => 0,
            MessageType::Non => 1,
            MessageType::Ack => 2,
            MessageType::Rst => 3,
        }
    }
    /// From the 2-bit wire value (only the low two bits are looked at).
    pub const fn from_bits(b: u8) -> Self {
        match b & 0b11 {
            0 => MessageType::Con,
            1 => MessageType::Non,
            2 => MessageType::Ack,
            _ => MessageType::Rst,
        }
    }
    /// Short upper-case name as Wireshark prints it.
    pub const fn as_str(self) -> &'static str {
        match self {
            MessageType::Con => "CON",
            MessageType::Non => "NON",
            MessageType::Ack => "ACK",
            MessageType::Rst => "RST",
        }
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An 8-bit code `c.dd`: 3-bit class, 5-bit detail (RFC 7252 §3). Displayed
/// as `2.05`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Code(pub u8);

impl Code {
    /// Build from class (0–7) and detail (0–31); out-of-range bits are masked.
    pub const fn new(class: u8, detail: u8) -> Self {
        Code(((class & 0x07) << 5) | (detail & 0x1f))
    }
    /// The class (0 request, 2 success, 4 client error, 5 server error).
    pub const fn class(self) -> u8 {
        self.0 >> 5
    }
    /// The detail (0–31).
    pub const fn detail(self) -> u8 {
        self.0 & 0x1f
    }
    /// 0.00: the Empty message (§4.1).
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// Class 0 with a non-zero detail (§5.8).
    pub const fn is_request(self) -> bool {
        self.class() == 0 && self.detail() != 0
    }
    /// Class 2 (§5.9.1).
    pub const fn is_success(self) -> bool {
        self.class() == 2
    }
    /// Classes 2, 4 and 5 (§5.9).
    pub const fn is_response(self) -> bool {
        matches!(self.class(), 2 | 4 | 5)
    }

    pub const EMPTY: Code = Code::new(0, 0);
    pub const GET: Code = Code::new(0, 1);
    pub const POST: Code = Code::new(0, 2);
    pub const PUT: Code = Code::new(0, 3);
    pub const DELETE: Code = Code::new(0, 4);
    pub const CREATED: Code = Code::new(2, 1);
    pub const DELETED: Code = Code::new(2, 2);
    pub const VALID: Code = Code::new(2, 3);
    pub const CHANGED: Code = Code::new(2, 4);
    pub const CONTENT: Code = Code::new(2, 5);
    /// RFC 7959 §2.9.1: a Block1 block was received, send the next one.
    pub const CONTINUE: Code = Code::new(2, 31);
    pub const BAD_REQUEST: Code = Code::new(4, 0);
    pub const UNAUTHORIZED: Code = Code::new(4, 1);
    pub const BAD_OPTION: Code = Code::new(4, 2);
    pub const FORBIDDEN: Code = Code::new(4, 3);
    pub const NOT_FOUND: Code = Code::new(4, 4);
    pub const METHOD_NOT_ALLOWED: Code = Code::new(4, 5);
    pub const NOT_ACCEPTABLE: Code = Code::new(4, 6);
    /// RFC 7959 §2.9.2: a Block1 block out of sequence, or the start is missing.
    pub const REQUEST_ENTITY_INCOMPLETE: Code = Code::new(4, 8);
    pub const PRECONDITION_FAILED: Code = Code::new(4, 12);
    pub const REQUEST_ENTITY_TOO_LARGE: Code = Code::new(4, 13);
    pub const UNSUPPORTED_CONTENT_FORMAT: Code = Code::new(4, 15);
    pub const INTERNAL_SERVER_ERROR: Code = Code::new(5, 0);
    pub const NOT_IMPLEMENTED: Code = Code::new(5, 1);
    pub const BAD_GATEWAY: Code = Code::new(5, 2);
    pub const SERVICE_UNAVAILABLE: Code = Code::new(5, 3);
    pub const GATEWAY_TIMEOUT: Code = Code::new(5, 4);
    pub const PROXYING_NOT_SUPPORTED: Code = Code::new(5, 5);
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.class(), self.detail())
    }
}

/// The request methods of RFC 7252 §5.8.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
}

impl Method {
    /// The request code of this method.
    pub const fn code(self) -> Code {
        match self {
            Method::Get => Code::GET,
            Method::Post => Code::POST,
            Method::Put => Code::PUT,
            Method::Delete => Code::DELETE,
        }
    }
    /// The method of a request code, `None` for other codes.
    pub const fn from_code(code: Code) -> Option<Self> {
        match code.0 {
            1 => Some(Method::Get),
            2 => Some(Method::Post),
            3 => Some(Method::Put),
            4 => Some(Method::Delete),
            _ => None,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_displays_class_dot_detail() {
        assert_eq!(Code::CONTENT.to_string(), "2.05");
        assert_eq!(Code::NOT_FOUND.to_string(), "4.04");
        assert_eq!(Code::GET.to_string(), "0.01");
        assert_eq!(Code::PRECONDITION_FAILED.to_string(), "4.12");
        assert_eq!(Code::CONTENT.0, 0x45);
        assert_eq!(Code::NOT_FOUND.0, 0x84);
    }

    #[test]
    fn code_classes() {
        assert!(Code::GET.is_request());
        assert!(!Code::EMPTY.is_request());
        assert!(Code::EMPTY.is_empty());
        assert!(Code::CHANGED.is_response());
        assert!(!Code::new(1, 0).is_response());
        assert_eq!(Method::from_code(Code::PUT), Some(Method::Put));
        assert_eq!(Method::from_code(Code::CONTENT), None);
    }

    #[test]
    fn message_type_bits_round_trip() {
        for b in 0..4u8 {
            assert_eq!(MessageType::from_bits(b).bits(), b);
        }
    }
}
