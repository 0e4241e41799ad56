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
//! `DataFrame::emit` / `DataFrame::parse` are the two-layer wire type
//! (DESIGN.md convention 4); parsing never panics on any input (checked
//! lengths, FCS verified). The simulator uses the lengths (airtime, bytes on
//! wire); the codec pins them to the standard's layout.

use crate::sim::SimDuration;

/// Synchronisation header + PHY header bytes (IEEE 802.15.4-2006 §6.3).
pub const PHY_HEADER_BYTES: u32 = 6;
/// aMaxPHYPacketSize (§6.4.1).
pub const MAX_PSDU_BYTES: u32 = 127;
/// ACK frame PSDU: FCF, sequence number, FCS (§7.2.2.3).
pub const ACK_PSDU_BYTES: u32 = 5;
/// Short broadcast address (§7.2.1.1.6).
pub const BROADCAST: u16 = 0xFFFF;

/// Addressing mode of data frames (both ends use the same mode).
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

/// A data frame as the MAC sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataFrame<'a> {
    pub seq: u8,
    pub pan: u16,
    pub addressing: Addressing,
    /// Destination (short: low 16 bits; `BROADCAST` for broadcast).
    pub dst: u64,
    pub src: u64,
    /// Ask for an ACK (unicast only).
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
    #[error("not a data frame with the supported addressing")]
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

const FRAME_DATA: u16 = 0b001;
const ACK_REQ: u16 = 1 << 5;
const PAN_COMP: u16 = 1 << 6;
const MODE_SHORT: u16 = 0b10;
const MODE_EXT: u16 = 0b11;

impl<'a> DataFrame<'a> {
    fn dst_mode(&self) -> Addressing {
        if self.dst == u64::from(BROADCAST) {
            Addressing::Short
        } else {
            self.addressing
        }
    }

    /// PSDU length (MAC header, payload, FCS).
    pub fn buffer_len(&self) -> usize {
        data_overhead(self.dst_mode(), self.addressing) as usize + self.payload.len()
    }

    /// Append the frame (with FCS) to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), FrameError> {
        if self.buffer_len() > MAX_PSDU_BYTES as usize {
            return Err(FrameError::TooLong);
        }
        let mode = |a: Addressing| match a {
            Addressing::Short => MODE_SHORT,
            Addressing::Extended => MODE_EXT,
        };
        let ack = if self.ack_request && self.dst != u64::from(BROADCAST) {
            ACK_REQ
        } else {
            0
        };
        let fcf = FRAME_DATA
            | ack
            | PAN_COMP
            | (mode(self.dst_mode()) << 10)
            | (1 << 12) // frame version 2006
            | (mode(self.addressing) << 14);
        let start = out.len();
        out.extend_from_slice(&fcf.to_le_bytes());
        out.push(self.seq);
        out.extend_from_slice(&self.pan.to_le_bytes());
        let put = |out: &mut Vec<u8>, a: u64, m: Addressing| match m {
            Addressing::Short => out.extend_from_slice(&(a as u16).to_le_bytes()),
            Addressing::Extended => out.extend_from_slice(&a.to_le_bytes()),
        };
        put(out, self.dst, self.dst_mode());
        put(out, self.src, self.addressing);
        out.extend_from_slice(self.payload);
        let c = fcs(&out[start..]);
        out.extend_from_slice(&c.to_le_bytes());
        Ok(())
    }

    /// Parse and check a PSDU.
    pub fn parse(b: &'a [u8]) -> Result<DataFrame<'a>, FrameError> {
        if b.len() > MAX_PSDU_BYTES as usize {
            return Err(FrameError::TooLong);
        }
        if b.len() < 2 {
            return Err(FrameError::Truncated);
        }
        let fcf = u16::from_le_bytes([b[0], b[1]]);
        let mode = |m: u16| match m {
            MODE_SHORT => Ok(Addressing::Short),
            MODE_EXT => Ok(Addressing::Extended),
            _ => Err(FrameError::Unsupported),
        };
        if fcf & 0b111 != FRAME_DATA || fcf & PAN_COMP == 0 {
            return Err(FrameError::Unsupported);
        }
        let dm = mode((fcf >> 10) & 0b11)?;
        let sm = mode((fcf >> 14) & 0b11)?;
        let hdr = 3 + 2 + dm.addr_len() as usize + sm.addr_len() as usize;
        if b.len() < hdr + 2 {
            return Err(FrameError::Truncated);
        }
        let (body, tail) = b.split_at(b.len() - 2);
        if fcs(body) != u16::from_le_bytes([tail[0], tail[1]]) {
            return Err(FrameError::Fcs);
        }
        let read = |at: usize, m: Addressing| -> u64 {
            match m {
                Addressing::Short => u64::from(u16::from_le_bytes([b[at], b[at + 1]])),
                Addressing::Extended => {
                    let mut x = [0u8; 8];
                    x.copy_from_slice(&b[at..at + 8]);
                    u64::from_le_bytes(x)
                }
            }
        };
        let dst = read(5, dm);
        let src = read(5 + dm.addr_len() as usize, sm);
        Ok(DataFrame {
            seq: b[2],
            pan: u16::from_le_bytes([b[3], b[4]]),
            addressing: sm,
            dst,
            src,
            ack_request: fcf & ACK_REQ != 0,
            payload: &body[hdr..],
        })
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
