//! Block-wise transfer (RFC 7959): the Block1/Block2 option value, the
//! block options of a message, body slicing, and the client side of a
//! transfer ([`BlockTransfer`]) that drives [`Endpoint::request`] one block
//! at a time. The server side lives in [`super::server::ResourceServer`]
//! (`with_block_szx`).
//!
//! Read first: RFC 7959 §2.2 (option value), §2.3 (Block options in
//! requests and responses), §2.4 (Block2: GET in blocks, early and late
//! negotiation), §2.5 (Block1: PUT/POST in blocks, 2.31 Continue), §4
//! (Size1/Size2). BERT (RFC 8323, SZX 7 over reliable transports) is not
//! built: SZX 7 is an error here.

use crate::net::addr::SockAddr;

use super::code::{Code, Method};
use super::codec::{CodecError, MessageRef, OptionWriter};
use super::endpoint::Endpoint;
use super::events::EndpointError;
use super::option::{decode_uint, encode_uint, OptionNumber};
use super::request::{Request, RequestHandle};

/// Largest block number: 20 bits in a 3-byte option value (§2.2).
pub const MAX_NUM: u32 = (1 << 20) - 1;
/// Largest valid SZX (1024-byte blocks); 7 is reserved (§2.2).
pub const MAX_SZX: u8 = 6;

/// Why a Block1/Block2 value is not acceptable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// SZX 7 is reserved (§2.2: MUST lead to 4.00 Bad Request in a request).
    #[error("block SZX 7 is reserved")]
    ReservedSzx,
    /// The option value is longer than 3 bytes (§2.1, a 4.02 for the endpoint).
    #[error("block option of {0} bytes (0 to 3 allowed)")]
    TooLong(usize),
    /// NUM above 2^20 − 1 (only when building a value).
    #[error("block number {0} above 2^20 - 1")]
    NumTooLarge(u64),
}

/// One Block1/Block2 option value (§2.2): block number NUM, more flag M,
/// size exponent SZX (block size 2^(SZX+4), 16 to 1024 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockValue {
    pub num: u32,
    pub more: bool,
    pub szx: u8,
}

impl BlockValue {
    /// A value; fails for NUM > 2^20 − 1 or SZX > 6.
    pub fn new(num: u32, more: bool, szx: u8) -> Result<Self, BlockError> {
        if num > MAX_NUM {
            return Err(BlockError::NumTooLarge(u64::from(num)));
        }
        if szx > MAX_SZX {
            return Err(BlockError::ReservedSzx);
        }
        Ok(BlockValue { num, more, szx })
    }

    /// Block size in bytes, 2^(SZX+4).
    pub const fn size(self) -> usize {
        size_of_szx(self.szx)
    }

    /// Byte offset of the block, NUM · size.
    pub const fn offset(self) -> usize {
        self.num as usize * self.size()
    }

    /// The option's uint: NUM << 4 | M << 3 | SZX.
    pub const fn to_uint(self) -> u32 {
        (self.num << 4) | ((self.more as u32) << 3) | self.szx as u32
    }

    /// Decode the option's uint (as `CoapOption::Block1/Block2` hold it).
    /// Values above 24 bits cannot come from a valid 3-byte option.
    pub fn from_uint(v: u32) -> Result<Self, BlockError> {
        if v >> 24 != 0 {
            return Err(BlockError::TooLong(4));
        }
        let szx = (v & 7) as u8;
        if szx == 7 {
            return Err(BlockError::ReservedSzx);
        }
        Ok(BlockValue {
            num: v >> 4,
            more: v & 8 != 0,
            szx,
        })
    }

    /// Decode the option's value bytes (0 to 3, leading zeros accepted).
    pub fn from_bytes(b: &[u8]) -> Result<Self, BlockError> {
        if b.len() > 3 {
            return Err(BlockError::TooLong(b.len()));
        }
        Self::from_uint(decode_uint(b).unwrap_or(0) as u32)
    }

    /// Minimal option value bytes (0 to 3) in the last `n` of the 8.
    pub fn encode(self) -> ([u8; 8], usize) {
        encode_uint(u64::from(self.to_uint()))
    }
}

/// Block size of `szx` (2^(SZX+4)).
pub const fn size_of_szx(szx: u8) -> usize {
    1 << (szx as usize + 4)
}

/// The SZX of a block size of 16, 32, …, 1024 bytes.
pub fn szx_of_size(size: usize) -> Option<u8> {
    (0..=MAX_SZX).find(|&s| size_of_szx(s) == size)
}

/// Block `num` of `body` in blocks of 2^(szx+4) bytes and whether more
/// follow; `None` when the block starts past the end (block 0 of an empty
/// body is the empty slice).
pub fn block_of(body: &[u8], num: u32, szx: u8) -> Option<(&[u8], bool)> {
    let size = size_of_szx(szx);
    let start = (num as usize).checked_mul(size)?;
    if start > body.len() || (start == body.len() && num > 0) {
        return None;
    }
    let end = (start + size).min(body.len());
    Some((&body[start..end], end < body.len()))
}

/// The block-wise options of one message as uints, or raw problems.
/// `Copy`, so events and replies carry it without allocating.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockOptions {
    /// Block1 (27) uint.
    pub block1: Option<u32>,
    /// Block2 (23) uint.
    pub block2: Option<u32>,
    /// Size1 (60): the request body's size (or, in a 4.13, the largest
    /// accepted).
    pub size1: Option<u32>,
    /// Size2 (28): the representation's size.
    pub size2: Option<u32>,
    /// A block or size option was present with a value too long for its
    /// format (kept out of the fields above).
    pub malformed: bool,
}

impl BlockOptions {
    /// No block options.
    pub const NONE: BlockOptions = BlockOptions {
        block1: None,
        block2: None,
        size1: None,
        size2: None,
        malformed: false,
    };

    /// True when no option is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::NONE
    }

    /// Read Block1/Block2/Size1/Size2 of a received message (first
    /// occurrence of each).
    pub fn of(m: &MessageRef<'_>) -> BlockOptions {
        let mut b = BlockOptions::NONE;
        for o in m.options() {
            let (slot, max) = match o.number {
                23 => (&mut b.block2, 3),
                27 => (&mut b.block1, 3),
                28 => (&mut b.size2, 4),
                60 => (&mut b.size1, 4),
                _ => continue,
            };
            if slot.is_some() {
                continue;
            }
            if o.value.len() > max {
                b.malformed = true;
                continue;
            }
            *slot = decode_uint(o.value).map(|v| v as u32);
        }
        b
    }

    /// Block1 decoded (`None` if absent).
    pub fn block1(&self) -> Option<Result<BlockValue, BlockError>> {
        self.block1.map(BlockValue::from_uint)
    }

    /// Block2 decoded (`None` if absent).
    pub fn block2(&self) -> Option<Result<BlockValue, BlockError>> {
        self.block2.map(BlockValue::from_uint)
    }

    /// Append the options whose numbers are above every option written
    /// before (Block2 23, Block1 27, Size2 28, Size1 60 — after Uri-Query
    /// 15 / Accept 17 / Location-Query 20) to a message being encoded.
    pub(crate) fn write(&self, out: &mut Vec<u8>, w: &mut OptionWriter) -> Result<(), CodecError> {
        self.write_range(out, w, 0, u16::MAX)
    }

    /// [`BlockOptions::write`] of the options numbered in `lo..hi` only
    /// (a request writes Proxy-Uri/Proxy-Scheme between Size2 and Size1).
    pub(crate) fn write_range(
        &self,
        out: &mut Vec<u8>,
        w: &mut OptionWriter,
        lo: u16,
        hi: u16,
    ) -> Result<(), CodecError> {
        let opts = [
            (OptionNumber::BLOCK2, self.block2),
            (OptionNumber::BLOCK1, self.block1),
            (OptionNumber::SIZE2, self.size2),
            (OptionNumber::SIZE1, self.size1),
        ];
        for (n, v) in opts {
            if !(lo..hi).contains(&n.0) {
                continue;
            }
            if let Some(v) = v {
                let (b, len) = encode_uint(u64::from(v));
                w.push(out, n.0, &b[8 - len..])?;
            }
        }
        Ok(())
    }
}

/// What a [`BlockTransfer`] does after a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockStep {
    /// The next block's request is queued in the endpoint under this handle.
    Next(RequestHandle),
    /// The transfer is complete: the final response's code (for a GET the
    /// representation is [`BlockTransfer::body`]).
    Done(Code),
    /// The transfer ended without success.
    Failed(BlockFailure),
}

/// Why a transfer failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockFailure {
    /// An error response (4.xx/5.xx, e.g. 4.08, 4.13), or a success before
    /// the last block of a Block1 body.
    Response(Code),
    /// A response's Block option was malformed (SZX 7, too long) or did not
    /// fit the transfer (wrong offset, short non-final block).
    BadBlock,
    /// The next request could not be encoded.
    Encode,
}

/// Counters of a [`BlockTransfer`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockCounters {
    /// Block requests made.
    pub requests: u32,
    /// Times the server made us use a smaller block (late negotiation).
    pub renegotiated: u32,
}

/// One block-wise transfer on the client side: a PUT/POST whose body goes
/// as a sequence of Block1 requests (§2.5), or a GET fetched with Block2
/// (§2.4). Each block is its own request through [`Endpoint::request`]
/// (own token); hand the transfer every `Event::ResponseReceived` of its
/// current [`BlockTransfer::handle`] with [`BlockTransfer::on_response`].
/// Failure events of the handle (`GaveUp`, `NoResponse`, `ResetReceived`)
/// end the transfer: drop it.
///
/// One scratch request is reused for every block (its payload buffer
/// holds the block), so the transfer allocates nothing per block after the
/// first.
#[derive(Debug, Clone)]
pub struct BlockTransfer {
    to: SockAddr,
    /// The request as sent per block (payload = the current block).
    req: Request,
    /// PUT/POST: the whole body. GET: the representation received so far.
    body: Vec<u8>,
    szx: u8,
    /// PUT/POST: offset of the block in flight. GET: unused.
    offset: usize,
    /// The block in flight was sent with Block1 (PUT) / Block2 (GET).
    blockwise: bool,
    /// GET: the first request carries Block2 with `szx` (early
    /// negotiation); otherwise `szx` only caps the server's choice.
    early: bool,
    handle: RequestHandle,
    size2: Option<u32>,
    counters: BlockCounters,
}

impl BlockTransfer {
    /// A PUT/POST of `req.payload` in blocks of 2^(szx+4) bytes (szx
    /// clamped to 0..=6). A body that fits one block goes as one plain
    /// request.
    pub fn upload(to: SockAddr, mut req: Request, szx: u8) -> Self {
        let body = std::mem::take(&mut req.payload);
        BlockTransfer {
            to,
            req,
            body,
            szx: szx.min(MAX_SZX),
            offset: 0,
            blockwise: false,
            early: true,
            handle: RequestHandle(u64::MAX),
            size2: None,
            counters: BlockCounters::default(),
        }
    }

    /// A GET of `req`'s resource: with `Some(szx)` the first request asks
    /// for blocks of that size (early negotiation, §2.4); with `None` the
    /// server chooses (late negotiation).
    pub fn download(to: SockAddr, mut req: Request, szx: Option<u8>) -> Self {
        req.method = Method::Get;
        req.payload.clear();
        BlockTransfer {
            to,
            req,
            body: Vec::new(),
            szx: szx.map_or(u8::MAX, |s| s.min(MAX_SZX)),
            offset: 0,
            blockwise: false,
            early: true,
            handle: RequestHandle(u64::MAX),
            size2: None,
            counters: BlockCounters::default(),
        }
    }

    /// GET: ask without Block2 first and let the server choose the size
    /// (its first response), then continue with blocks no larger than this
    /// transfer's SZX (§2.4, late negotiation by the client, RFC 7959
    /// Figure 4).
    pub fn late(mut self) -> Self {
        self.early = false;
        self
    }

    fn is_get(&self) -> bool {
        self.req.method == Method::Get
    }

    /// Send the first request.
    pub fn start(&mut self, ep: &mut Endpoint) -> Result<RequestHandle, EndpointError> {
        if self.is_get() {
            let first = (self.early && self.szx <= MAX_SZX).then_some(BlockValue {
                num: 0,
                more: false,
                szx: self.szx,
            });
            return self.send_get(ep, first);
        }
        self.send_put(ep)
    }

    /// The handle of the request in flight.
    pub fn handle(&self) -> RequestHandle {
        self.handle
    }

    /// The peer.
    pub fn peer(&self) -> SockAddr {
        self.to
    }

    /// PUT/POST: the body being sent. GET: the representation received so
    /// far (all of it after `Done`).
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The current block size exponent (after any late negotiation).
    pub fn szx(&self) -> u8 {
        self.szx
    }

    /// Size2 as the server last stated it.
    pub fn size2(&self) -> Option<u32> {
        self.size2
    }

    /// Requests made, renegotiations.
    pub fn counters(&self) -> BlockCounters {
        self.counters
    }

    /// The response to the request in flight arrived (the caller matched
    /// `handle`): send the next block, or finish.
    pub fn on_response(
        &mut self,
        ep: &mut Endpoint,
        code: Code,
        block: &BlockOptions,
        payload: &[u8],
    ) -> BlockStep {
        if self.is_get() {
            self.on_get_response(ep, code, block, payload)
        } else {
            self.on_put_response(ep, code, block)
        }
    }

    fn send_put(&mut self, ep: &mut Endpoint) -> Result<RequestHandle, EndpointError> {
        let size = size_of_szx(self.szx);
        let first = self.offset == 0;
        self.req.payload.clear();
        self.req.block = BlockOptions::NONE;
        if first && self.body.len() <= size {
            // fits one block: a plain request (§2.5 needs no Block1)
            self.blockwise = false;
            self.req.payload.extend_from_slice(&self.body);
        } else {
            self.blockwise = true;
            let end = (self.offset + size).min(self.body.len());
            self.req
                .payload
                .extend_from_slice(&self.body[self.offset..end]);
            let v = BlockValue {
                num: (self.offset / size) as u32,
                more: end < self.body.len(),
                szx: self.szx,
            };
            self.req.block.block1 = Some(v.to_uint());
            if first {
                // §4: Size1 tells the server the whole body's size
                self.req.block.size1 = Some(self.body.len() as u32);
            }
        }
        self.counters.requests += 1;
        let h = ep.request(self.to, &self.req)?;
        self.handle = h;
        Ok(h)
    }

    fn on_put_response(
        &mut self,
        ep: &mut Endpoint,
        code: Code,
        block: &BlockOptions,
    ) -> BlockStep {
        let size = size_of_szx(self.szx);
        let last = !self.blockwise || self.offset + size >= self.body.len();
        if code != Code::CONTINUE {
            if code.class() == 2 && last {
                return BlockStep::Done(code);
            }
            return BlockStep::Failed(BlockFailure::Response(code));
        }
        // 2.31 Continue (§2.5): the server took the block; it may ask for
        // smaller ones (late negotiation) with the SZX of its Block1
        if last {
            return BlockStep::Failed(BlockFailure::BadBlock);
        }
        match block.block1() {
            Some(Ok(v)) if v.szx < self.szx => {
                self.szx = v.szx;
                self.counters.renegotiated += 1;
            }
            Some(Ok(_)) | None => {}
            Some(Err(_)) => return BlockStep::Failed(BlockFailure::BadBlock),
        }
        self.offset += size;
        match self.send_put(ep) {
            Ok(h) => BlockStep::Next(h),
            Err(_) => BlockStep::Failed(BlockFailure::Encode),
        }
    }

    fn send_get(
        &mut self,
        ep: &mut Endpoint,
        block2: Option<BlockValue>,
    ) -> Result<RequestHandle, EndpointError> {
        self.req.block = BlockOptions::NONE;
        self.req.block.block2 = block2.map(BlockValue::to_uint);
        self.counters.requests += 1;
        let h = ep.request(self.to, &self.req)?;
        self.handle = h;
        Ok(h)
    }

    fn on_get_response(
        &mut self,
        ep: &mut Endpoint,
        code: Code,
        block: &BlockOptions,
        payload: &[u8],
    ) -> BlockStep {
        if code.class() != 2 {
            return BlockStep::Failed(BlockFailure::Response(code));
        }
        if block.malformed {
            return BlockStep::Failed(BlockFailure::BadBlock);
        }
        if let Some(s) = block.size2 {
            self.size2 = Some(s);
        }
        let v = match block.block2() {
            // the whole representation in one response
            None if self.body.is_empty() => {
                self.body.extend_from_slice(payload);
                return BlockStep::Done(code);
            }
            None => return BlockStep::Failed(BlockFailure::BadBlock),
            Some(Err(_)) => return BlockStep::Failed(BlockFailure::BadBlock),
            Some(Ok(v)) => v,
        };
        // the block must continue what we have; a non-final block is full
        if v.offset() != self.body.len() || (v.more && payload.len() != v.size()) {
            return BlockStep::Failed(BlockFailure::BadBlock);
        }
        // the server may send smaller blocks than asked (§2.4); we may
        // ask for smaller ones than it sent (Figure 4)
        if self.szx > MAX_SZX {
            self.szx = v.szx;
        } else if v.szx < self.szx {
            self.counters.renegotiated += 1;
            self.szx = v.szx;
        }
        let szx = self.szx.min(v.szx);
        self.body.extend_from_slice(payload);
        if !v.more {
            return BlockStep::Done(code);
        }
        let next = BlockValue {
            num: (self.body.len() / size_of_szx(szx)) as u32,
            more: false,
            szx,
        };
        if next.num > MAX_NUM {
            return BlockStep::Failed(BlockFailure::BadBlock);
        }
        match self.send_get(ep, Some(next)) {
            Ok(h) => BlockStep::Next(h),
            Err(_) => BlockStep::Failed(BlockFailure::Encode),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_round_trip_and_limits() {
        let v = BlockValue::new(5, true, 2).unwrap();
        assert_eq!(v.to_uint(), 5 << 4 | 8 | 2);
        assert_eq!(BlockValue::from_uint(v.to_uint()), Ok(v));
        assert_eq!(v.size(), 64);
        assert_eq!(v.offset(), 320);
        assert_eq!(BlockValue::from_uint(7), Err(BlockError::ReservedSzx));
        assert!(BlockValue::new(MAX_NUM + 1, false, 0).is_err());
        let (b, n) = BlockValue::new(MAX_NUM, true, 6).unwrap().encode();
        assert_eq!(&b[8 - n..], &[0xff, 0xff, 0xfe]);
        assert_eq!(
            block_of(b"abcdefghijklmnopq", 1, 0),
            Some((&b"q"[..], false))
        );
        assert_eq!(block_of(b"abcdefghijklmnop", 1, 0), None);
        assert_eq!(block_of(b"", 0, 0), Some((&b""[..], false)));
    }
}
