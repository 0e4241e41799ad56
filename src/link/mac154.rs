//! IEEE 802.15.4 MAC frames and parameters (read first: IEEE 802.15.4-2006
//! §7.2 frame formats, §7.4.2 MAC constants and PIB attributes, §7.5.1.4
//! unslotted CSMA-CA, §7.5.6.4 acknowledgment; §6.4.1 PHY constants).
//!
//! Frames are byte-accurate: a data frame is
//! `FCF(2) Seq(1) DstPAN(2) Dst(2|8) Src(2|8) payload FCS(2)` with PAN ID
//! compression (source PAN omitted, one PAN), so the MAC overhead is 11 bytes
//! with short addresses and 23 with extended ones; an ACK frame is
//! `FCF(2) Seq(1) FCS(2)` = 5 bytes. On air each frame (PSDU) is preceded by
//! the 6-byte synchronisation and PHY header (4 preamble, 1 SFD, 1 length),
//! so at 250 kbit/s a full 127-byte frame takes 133 B × 32 µs = 4.256 ms.
//!
//! [`MacFrame`] is the two-layer wire type (DESIGN.md convention 4) of data
//! frames: every header field is represented (destination and source
//! addressing modes independently, PAN ID compression, frame version 2003 or
//! 2006, frame pending, ACK request), `parse` never panics on any input
//! (checked lengths, FCS verified) and `parse`/`emit` are exact inverses.
//! [`DataFrame`] is the simulator's shorthand for the frames it sends (one
//! PAN, one addressing mode, broadcast 0xFFFF); its `emit` goes through
//! `MacFrame`. The simulator uses the lengths (airtime, bytes on wire); the
//! codec pins them to the standard's layout.

use crate::sim::SimDuration;

/// Synchronisation header + PHY header bytes (IEEE 802.15.4-2006 §6.3).
pub const PHY_HEADER_BYTES: u32 = 6;
/// aMaxPHYPacketSize (§6.4.1).
pub const MAX_PSDU_BYTES: u32 = 127;
/// ACK frame PSDU: FCF, sequence number, FCS (§7.2.2.3).
pub const ACK_PSDU_BYTES: u32 = 5;
/// Short broadcast address (§7.2.1.1.6).
pub const BROADCAST: u16 = 0xFFFF;

/// Addressing mode of the data frames a medium sends (both ends use the
/// same mode; [`Address`] is one address of any mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addressing {
    /// 16-bit short addresses.
    Short,
    /// 64-bit extended addresses (broadcast frames still use the short
    /// broadcast destination 0xFFFF).
    Extended,
}

impl Addressing {
    /// Bytes of one address.
    pub fn addr_len(self) -> u32 {
        match self {
            Addressing::Short => 2,
            Addressing::Extended => 8,
        }
    }
}

/// MAC header + FCS bytes of a data frame (PAN ID compression).
pub fn data_overhead(dst: Addressing, src: Addressing) -> u32 {
    2 + 1 + 2 + dst.addr_len() + src.addr_len() + 2
}

/// Time to send `ppdu_bytes` bytes at `rate_bps`, rounded up to the ns.
pub fn airtime(ppdu_bytes: u32, rate_bps: u64) -> SimDuration {
    SimDuration::transmission(u64::from(ppdu_bytes), rate_bps)
}

/// MAC parameters of a medium (IEEE 802.15.4-2006 Table 86 defaults in
/// `MacParams::IEEE802154`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MacParams {
    pub addressing: Addressing,
    /// Unslotted CSMA-CA on (off: transmit right after the RX→TX turnaround).
    pub csma: bool,
    /// macMinBE.
    pub min_be: u8,
    /// macMaxBE.
    pub max_be: u8,
    /// macMaxCSMABackoffs.
    pub max_backoffs: u8,
    /// aUnitBackoffPeriod (20 symbols = 320 µs at 2.4 GHz).
    pub unit_backoff: SimDuration,
    /// CCA detection time (8 symbols = 128 µs).
    pub cca_duration: SimDuration,
    /// Link-layer ACKs for unicast frames.
    pub ack: bool,
    /// macMaxFrameRetries.
    pub max_frame_retries: u8,
    /// macAckWaitDuration, from the end of the data frame (54 symbols = 864 µs).
    pub ack_wait: SimDuration,
    /// Frames waiting behind the one being sent.
    pub queue: u32,
    /// Regulatory transmit duty-cycle limit (e.g. 0.01 in the EU 868 MHz
    /// band): after a frame of airtime T the radio stays silent
    /// T·(1/limit − 1). `None`: no limit.
    pub tx_duty_limit: Option<f64>,
}

impl MacParams {
    pub const IEEE802154: MacParams = MacParams {
        addressing: Addressing::Short,
        csma: true,
        min_be: 3,
        max_be: 5,
        max_backoffs: 4,
        unit_backoff: SimDuration::from_micros(320),
        cca_duration: SimDuration::from_micros(128),
        ack: true,
        max_frame_retries: 3,
        ack_wait: SimDuration::from_micros(864),
        queue: 32,
        tx_duty_limit: None,
    };
}

/// A data frame as the simulator's MAC describes it: one PAN (PAN ID
/// compression), frame version 2006, no frame pending, both addresses in
/// the medium's mode except a broadcast destination (short 0xFFFF). It is a
/// shorthand for the [`MacFrame`] that [`DataFrame::frame`] builds; the
/// codec proper is `MacFrame`, which represents every data frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataFrame<'a> {
    pub seq: u8,
    pub pan: u16,
    pub addressing: Addressing,
    /// Destination (short: low 16 bits; `BROADCAST` for broadcast).
    pub dst: u64,
    pub src: u64,
    /// Ask for an ACK (unicast only: ignored for broadcast).
    pub ack_request: bool,
    pub payload: &'a [u8],
}

/// Malformed frame bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame shorter than its header")]
    Truncated,
    #[error("frame longer than aMaxPHYPacketSize (127)")]
    TooLong,
    #[error("bad FCS")]
    Fcs,
    #[error("not a data frame the codec supports (frame type, security, frame version, reserved bits or addressing)")]
    Unsupported,
}

/// CRC-16 of IEEE 802.15.4 §7.2.1.9 (ITU-T, polynomial x¹⁶+x¹²+x⁵+1,
/// reflected 0x8408, initial 0, LSB first).
pub fn fcs(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in data {
        crc ^= u16::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x8408
            } else {
                crc >> 1
            };
        }
    }
    crc
}

// Frame control field (§7.2.1.1).
const FRAME_TYPE_MASK: u16 = 0b111;
const FRAME_DATA: u16 = 0b001;
const SECURITY: u16 = 1 << 3;
const FRAME_PENDING: u16 = 1 << 4;
const ACK_REQ: u16 = 1 << 5;
const PAN_COMP: u16 = 1 << 6;
/// Bits 7–9.
const RESERVED: u16 = 0b111 << 7;
const DST_MODE_SHIFT: u16 = 10;
const VERSION_SHIFT: u16 = 12;
const SRC_MODE_SHIFT: u16 = 14;
const MODE_NONE: u16 = 0b00;
const MODE_SHORT: u16 = 0b10;
const MODE_EXT: u16 = 0b11;

/// A short or extended (EUI-64) MAC address (§7.2.1.1.6, §7.2.1.1.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Address {
    Short(u16),
    Extended(u64),
}

impl Address {
    pub fn addressing(self) -> Addressing {
        match self {
            Address::Short(_) => Addressing::Short,
            Address::Extended(_) => Addressing::Extended,
        }
    }
    fn mode(self) -> u16 {
        match self {
            Address::Short(_) => MODE_SHORT,
            Address::Extended(_) => MODE_EXT,
        }
    }
    fn len(self) -> usize {
        self.addressing().addr_len() as usize
    }
    fn put(self, out: &mut Vec<u8>) {
        match self {
            Address::Short(a) => out.extend_from_slice(&a.to_le_bytes()),
            Address::Extended(a) => out.extend_from_slice(&a.to_le_bytes()),
        }
    }
}

/// The Frame Version subfield (§7.2.1.1.7). The 2015 revision's version 2
/// (different PAN ID compression rules, header IEs) is not supported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameVersion {
    /// 0b00: IEEE 802.15.4-2003.
    Ieee2003,
    /// 0b01: IEEE 802.15.4-2006 (what the simulator emits).
    Ieee2006,
}

/// The addressing fields of a data frame: which addresses are present and
/// how the PAN identifiers are coded (Destination/Source Addressing Mode
/// and PAN ID Compression, §7.2.1.1.5, §7.2.1.1.6, §7.2.1.1.8). Every value
/// is a valid combination: a data frame carries at least one address, and
/// PAN ID compression needs both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Addresses {
    /// Destination only (source implicitly the PAN coordinator).
    Dst { pan: u16, dst: Address },
    /// Source only (destination implicitly the PAN coordinator).
    Src { pan: u16, src: Address },
    /// Both addresses in one PAN: PAN ID Compression = 1, the source PAN
    /// identifier is omitted.
    IntraPan {
        pan: u16,
        dst: Address,
        src: Address,
    },
    /// Both addresses, each with its PAN identifier (PAN ID Compression =
    /// 0; the two may be equal).
    InterPan {
        dst_pan: u16,
        dst: Address,
        src_pan: u16,
        src: Address,
    },
}

impl Addresses {
    pub fn dst(&self) -> Option<Address> {
        match *self {
            Addresses::Dst { dst, .. }
            | Addresses::IntraPan { dst, .. }
            | Addresses::InterPan { dst, .. } => Some(dst),
            Addresses::Src { .. } => None,
        }
    }
    pub fn src(&self) -> Option<Address> {
        match *self {
            Addresses::Src { src, .. }
            | Addresses::IntraPan { src, .. }
            | Addresses::InterPan { src, .. } => Some(src),
            Addresses::Dst { .. } => None,
        }
    }
    fn pan_id_compression(&self) -> bool {
        matches!(self, Addresses::IntraPan { .. })
    }
    /// Bytes of the addressing fields.
    fn len(&self) -> usize {
        match *self {
            Addresses::Dst { dst: a, .. } | Addresses::Src { src: a, .. } => 2 + a.len(),
            Addresses::IntraPan { dst, src, .. } => 2 + dst.len() + src.len(),
            Addresses::InterPan { dst, src, .. } => 4 + dst.len() + src.len(),
        }
    }
    fn put(&self, out: &mut Vec<u8>) {
        match *self {
            Addresses::Dst { pan, dst: a } | Addresses::Src { pan, src: a } => {
                out.extend_from_slice(&pan.to_le_bytes());
                a.put(out);
            }
            Addresses::IntraPan { pan, dst, src } => {
                out.extend_from_slice(&pan.to_le_bytes());
                dst.put(out);
                src.put(out);
            }
            Addresses::InterPan {
                dst_pan,
                dst,
                src_pan,
                src,
            } => {
                out.extend_from_slice(&dst_pan.to_le_bytes());
                dst.put(out);
                out.extend_from_slice(&src_pan.to_le_bytes());
                src.put(out);
            }
        }
    }
}

/// An IEEE 802.15.4 (2003/2006) data frame, every header field
/// represented: `FCF(2) Seq(1) [DstPAN(2) Dst(2|8)] [SrcPAN(2)] [Src(2|8)]
/// payload FCS(2)`. `parse` and `emit` are inverse: `parse(emit(f)) == f`
/// for every frame that fits, and `emit(parse(b)) == b` for every `b` that
/// parses. Frames using what the codec does not model (security, other
/// frame types or versions, reserved FCF bits, reserved addressing modes)
/// are refused as `Unsupported` rather than altered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MacFrame<'a> {
    pub version: FrameVersion,
    pub seq: u8,
    pub frame_pending: bool,
    /// Kept as sent, broadcast destination included (whether a MAC honours
    /// it there is the MAC's business, §7.5.6.4).
    pub ack_request: bool,
    pub addresses: Addresses,
    pub payload: &'a [u8],
}

impl<'a> MacFrame<'a> {
    /// Frame control field.
    fn fcf(&self) -> u16 {
        let mode = |a: Option<Address>| a.map_or(MODE_NONE, Address::mode);
        let flag = |on: bool, bit: u16| if on { bit } else { 0 };
        let version: u16 = match self.version {
            FrameVersion::Ieee2003 => 0,
            FrameVersion::Ieee2006 => 1,
        };
        FRAME_DATA
            | flag(self.frame_pending, FRAME_PENDING)
            | flag(self.ack_request, ACK_REQ)
            | flag(self.addresses.pan_id_compression(), PAN_COMP)
            | (mode(self.addresses.dst()) << DST_MODE_SHIFT)
            | (version << VERSION_SHIFT)
            | (mode(self.addresses.src()) << SRC_MODE_SHIFT)
    }

    /// PSDU length (MAC header, payload, FCS).
    pub fn buffer_len(&self) -> usize {
        2 + 1 + self.addresses.len() + self.payload.len() + 2
    }

    /// Append the frame (with FCS) to `out`; nothing is written on error.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), FrameError> {
        if self.buffer_len() > MAX_PSDU_BYTES as usize {
            return Err(FrameError::TooLong);
        }
        let start = out.len();
        out.extend_from_slice(&self.fcf().to_le_bytes());
        out.push(self.seq);
        self.addresses.put(out);
        out.extend_from_slice(self.payload);
        let c = fcs(out.get(start..).unwrap_or(&[]));
        out.extend_from_slice(&c.to_le_bytes());
        Ok(())
    }

    /// Parse and check a PSDU (never panics).
    pub fn parse(b: &'a [u8]) -> Result<MacFrame<'a>, FrameError> {
        if b.len() > MAX_PSDU_BYTES as usize {
            return Err(FrameError::TooLong);
        }
        let (fcf, seq) = match *b {
            [lo, hi, seq, ..] => (u16::from_le_bytes([lo, hi]), seq),
            _ => return Err(FrameError::Truncated),
        };
        if fcf & FRAME_TYPE_MASK != FRAME_DATA || fcf & (SECURITY | RESERVED) != 0 {
            return Err(FrameError::Unsupported);
        }
        let version = match (fcf >> VERSION_SHIFT) & 0b11 {
            0 => FrameVersion::Ieee2003,
            1 => FrameVersion::Ieee2006,
            _ => return Err(FrameError::Unsupported),
        };
        let mut r = Reader { b, at: 3 };
        let compressed = fcf & PAN_COMP != 0;
        let dst_mode = (fcf >> DST_MODE_SHIFT) & 0b11;
        let src_mode = (fcf >> SRC_MODE_SHIFT) & 0b11;
        if dst_mode == 0b01 || src_mode == 0b01 {
            return Err(FrameError::Unsupported); // reserved mode
        }
        let addresses = match (dst_mode != MODE_NONE, src_mode != MODE_NONE, compressed) {
            (true, true, true) => Addresses::IntraPan {
                pan: r.u16()?,
                dst: r.addr(dst_mode)?,
                src: r.addr(src_mode)?,
            },
            (true, true, false) => Addresses::InterPan {
                dst_pan: r.u16()?,
                dst: r.addr(dst_mode)?,
                src_pan: r.u16()?,
                src: r.addr(src_mode)?,
            },
            (true, false, false) => Addresses::Dst {
                pan: r.u16()?,
                dst: r.addr(dst_mode)?,
            },
            (false, true, false) => Addresses::Src {
                pan: r.u16()?,
                src: r.addr(src_mode)?,
            },
            // No address at all, or PAN ID compression without both
            // addresses: not a valid data frame (§7.2.1.1.5, §7.2.1.1.6).
            _ => return Err(FrameError::Unsupported),
        };
        let body_len = b.len().checked_sub(2).ok_or(FrameError::Truncated)?;
        if body_len < r.at {
            return Err(FrameError::Truncated);
        }
        let (body, tail) = b.split_at(body_len);
        if tail != fcs(body).to_le_bytes() {
            return Err(FrameError::Fcs);
        }
        Ok(MacFrame {
            version,
            seq,
            frame_pending: fcf & FRAME_PENDING != 0,
            ack_request: fcf & ACK_REQ != 0,
            addresses,
            payload: body.get(r.at..).unwrap_or(&[]),
        })
    }
}

/// Bounds-checked little-endian reads of the header (the FCS is not part of
/// it: reads must stop 2 bytes before the end).
struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], FrameError> {
        let end = self.at + N;
        let header = self.b.len().saturating_sub(2);
        let bytes = match self.b.get(self.at..end) {
            Some(s) if end <= header => s,
            _ => return Err(FrameError::Truncated),
        };
        let mut x = [0u8; N];
        x.copy_from_slice(bytes);
        self.at = end;
        Ok(x)
    }
    fn u16(&mut self) -> Result<u16, FrameError> {
        self.take().map(u16::from_le_bytes)
    }
    fn addr(&mut self, mode: u16) -> Result<Address, FrameError> {
        if mode == MODE_EXT {
            self.take()
                .map(|x| Address::Extended(u64::from_le_bytes(x)))
        } else {
            self.u16().map(Address::Short)
        }
    }
}

impl<'a> DataFrame<'a> {
    /// The frame this describes. A broadcast destination is the short
    /// address 0xFFFF whatever the addressing, and never requests an ACK;
    /// a short address is the low 16 bits of `dst`/`src`.
    pub fn frame(&self) -> MacFrame<'a> {
        let broadcast = self.dst == u64::from(BROADCAST);
        let addr = |a: u64, m: Addressing| match m {
            Addressing::Short => Address::Short(a as u16),
            Addressing::Extended => Address::Extended(a),
        };
        MacFrame {
            version: FrameVersion::Ieee2006,
            seq: self.seq,
            frame_pending: false,
            ack_request: self.ack_request && !broadcast,
            addresses: Addresses::IntraPan {
                pan: self.pan,
                dst: if broadcast {
                    Address::Short(BROADCAST)
                } else {
                    addr(self.dst, self.addressing)
                },
                src: addr(self.src, self.addressing),
            },
            payload: self.payload,
        }
    }

    /// PSDU length (MAC header, payload, FCS).
    pub fn buffer_len(&self) -> usize {
        self.frame().buffer_len()
    }

    /// Append the frame (with FCS) to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), FrameError> {
        self.frame().emit(out)
    }

    /// Parse and check a PSDU that a `DataFrame` can describe exactly (so
    /// `emit` gives back the same bytes); any other valid frame is
    /// `Unsupported` here: use [`MacFrame::parse`].
    pub fn parse(b: &'a [u8]) -> Result<DataFrame<'a>, FrameError> {
        let f = MacFrame::parse(b)?;
        let Addresses::IntraPan { pan, dst, src } = f.addresses else {
            return Err(FrameError::Unsupported);
        };
        let value = |a: Address| match a {
            Address::Short(x) => u64::from(x),
            Address::Extended(x) => x,
        };
        let d = DataFrame {
            seq: f.seq,
            pan,
            addressing: src.addressing(),
            dst: value(dst),
            src: value(src),
            ack_request: f.ack_request,
            payload: f.payload,
        };
        if d.frame() == f {
            Ok(d)
        } else {
            Err(FrameError::Unsupported)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_frame_airtime_is_4256_us() {
        assert_eq!(
            airtime(MAX_PSDU_BYTES + PHY_HEADER_BYTES, 250_000),
            SimDuration::from_micros(4256)
        );
        assert_eq!(
            airtime(ACK_PSDU_BYTES + PHY_HEADER_BYTES, 250_000),
            SimDuration::from_micros(352)
        );
    }

    #[test]
    fn overheads_match_the_layout() {
        assert_eq!(data_overhead(Addressing::Short, Addressing::Short), 11);
        assert_eq!(
            data_overhead(Addressing::Extended, Addressing::Extended),
            23
        );
        for addressing in [Addressing::Short, Addressing::Extended] {
            let payload = [0xAB; 40];
            let f = DataFrame {
                seq: 7,
                pan: 0xABCD,
                addressing,
                dst: 0x0102_0304_0506_0708
                    & if addressing == Addressing::Short {
                        0xFFFF
                    } else {
                        u64::MAX
                    },
                src: 0x1122,
                ack_request: true,
                payload: &payload,
            };
            let mut out = Vec::new();
            f.emit(&mut out).expect("fits");
            assert_eq!(out.len(), f.buffer_len());
            assert_eq!(out.len() as u32, data_overhead(addressing, addressing) + 40);
            assert_eq!(DataFrame::parse(&out), Ok(f));
            out[9] ^= 1;
            assert_eq!(DataFrame::parse(&out), Err(FrameError::Fcs));
        }
    }

    /// `DataFrame::emit` as it was before it went through `MacFrame`: the
    /// simulator's pcap bytes must not change.
    fn legacy_emit(f: &DataFrame, out: &mut Vec<u8>) -> Result<(), FrameError> {
        let dst_mode = if f.dst == u64::from(BROADCAST) {
            Addressing::Short
        } else {
            f.addressing
        };
        if data_overhead(dst_mode, f.addressing) as usize + f.payload.len() > 127 {
            return Err(FrameError::TooLong);
        }
        let mode = |a: Addressing| match a {
            Addressing::Short => MODE_SHORT,
            Addressing::Extended => MODE_EXT,
        };
        let ack = if f.ack_request && f.dst != u64::from(BROADCAST) {
            ACK_REQ
        } else {
            0
        };
        let fcf = FRAME_DATA
            | ack
            | PAN_COMP
            | (mode(dst_mode) << 10)
            | (1 << 12)
            | (mode(f.addressing) << 14);
        let start = out.len();
        out.extend_from_slice(&fcf.to_le_bytes());
        out.push(f.seq);
        out.extend_from_slice(&f.pan.to_le_bytes());
        let put = |out: &mut Vec<u8>, a: u64, m: Addressing| match m {
            Addressing::Short => out.extend_from_slice(&(a as u16).to_le_bytes()),
            Addressing::Extended => out.extend_from_slice(&a.to_le_bytes()),
        };
        put(out, f.dst, dst_mode);
        put(out, f.src, f.addressing);
        out.extend_from_slice(f.payload);
        let c = fcs(&out[start..]);
        out.extend_from_slice(&c.to_le_bytes());
        Ok(())
    }

    #[test]
    fn data_frame_bytes_are_unchanged() {
        let payload: Vec<u8> = (0..=120u8).collect();
        let addrs = [
            1,
            2,
            0xFFFE,
            u64::from(BROADCAST),
            0x1_0000,
            0x0102_0304_0506_0708,
        ];
        for addressing in [Addressing::Short, Addressing::Extended] {
            for dst in addrs {
                for src in addrs {
                    for ack_request in [false, true] {
                        for len in [0, 1, 40, 95, 96, 104, 105, 116, 117, 120] {
                            let f = DataFrame {
                                seq: len as u8 ^ 0x5A,
                                pan: 0x1234,
                                addressing,
                                dst,
                                src,
                                ack_request,
                                payload: &payload[..len],
                            };
                            let (mut new, mut old) = (vec![0xEE], vec![0xEE]);
                            let r = f.emit(&mut new);
                            assert_eq!(r, legacy_emit(&f, &mut old), "{f:?}");
                            assert_eq!(new, old, "{f:?}");
                            if r.is_ok() {
                                assert_eq!(new.len() - 1, f.buffer_len());
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn fcs_check_value() {
        // CRC-16/KERMIT (the 802.15.4 FCS) of "123456789" is 0x2189.
        assert_eq!(fcs(b"123456789"), 0x2189);
    }

    #[test]
    fn parse_never_panics_on_short_or_odd_input() {
        for n in 0..40 {
            let b: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            let _ = DataFrame::parse(&b);
        }
        let big = [0u8; 200];
        assert_eq!(DataFrame::parse(&big), Err(FrameError::TooLong));
    }
}
