//! pcap capture files with nanosecond timestamps.
//!
//! Read first: draft-ietf-opsawg-pcap (the pcap file format): global header
//! with magic 0xA1B23C4D for nanosecond resolution, version 2.4, snaplen and
//! link type; then per packet a 16-byte record header (seconds, nanoseconds,
//! captured length, original length) and the captured bytes. The link type is
//! 228, LINKTYPE_IPV4 (raw IPv4 packets, no link header) from the tcpdump.org
//! link-type registry.
//!
//! Every field is written little-endian whatever the host, so a run gives the
//! same bytes on every machine; readers detect the byte order from the magic.

use crate::sim::SimTime;
use std::io::{self, Write};

/// Magic number of nanosecond-resolution pcap files.
pub const MAGIC_NANOS: u32 = 0xA1B2_3C4D;
/// Largest number of bytes captured per packet.
pub const SNAPLEN: u32 = 65535;
/// LINKTYPE_IPV4: each packet starts with an IPv4 header.
pub const LINKTYPE_IPV4: u32 = 228;
/// LINKTYPE_IPV6: each packet starts with an IPv6 header (the wired links
/// of an IPv6 run).
pub const LINKTYPE_IPV6: u32 = 229;
/// LINKTYPE_IEEE802_15_4_WITHFCS: IEEE 802.15.4 MAC frames with their FCS
/// (the captures of a shared radio medium).
pub const LINKTYPE_IEEE802_15_4_WITHFCS: u32 = 195;

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// Writes packets to a pcap stream.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    w: W,
}

impl<W: Write> PcapWriter<W> {
    /// Write the 24-byte global header (raw IPv4 link type) to `w`.
    pub fn new(w: W) -> io::Result<Self> {
        Self::with_linktype(w, LINKTYPE_IPV4)
    }

    /// Write the 24-byte global header with link type `linktype` to `w`.
    pub fn with_linktype(mut w: W, linktype: u32) -> io::Result<Self> {
        let mut h = [0u8; 24];
        h[0..4].copy_from_slice(&MAGIC_NANOS.to_le_bytes());
        h[4..6].copy_from_slice(&2u16.to_le_bytes()); // version major
        h[6..8].copy_from_slice(&4u16.to_le_bytes()); // version minor
                                                      // Bytes 8..16, thiszone and sigfigs, stay 0: timestamps count from 0.
        h[16..20].copy_from_slice(&SNAPLEN.to_le_bytes());
        h[20..24].copy_from_slice(&linktype.to_le_bytes());
        w.write_all(&h)?;
        Ok(PcapWriter { w })
    }

    /// Append one packet captured at simulated time `time` (written as seconds
    /// and nanoseconds since the epoch 0). Packets longer than the snap length
    /// are truncated to it, with the original length recorded. Fails with
    /// `InvalidInput` when the time does not fit 32-bit seconds (year 2106).
    pub fn write_packet(&mut self, time: SimTime, data: &[u8]) -> io::Result<()> {
        let ns = time.as_nanos();
        let secs = u32::try_from(ns / NANOS_PER_SEC).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("pcap: time {time} exceeds the 32-bit seconds field"),
            )
        })?;
        let nanos = (ns % NANOS_PER_SEC) as u32; // < 10^9, fits
        let orig = u32::try_from(data.len()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "pcap: {}-byte packet exceeds the 32-bit length field",
                    data.len()
                ),
            )
        })?;
        let incl = orig.min(SNAPLEN);
        let mut r = [0u8; 16];
        r[0..4].copy_from_slice(&secs.to_le_bytes());
        r[4..8].copy_from_slice(&nanos.to_le_bytes());
        r[8..12].copy_from_slice(&incl.to_le_bytes());
        r[12..16].copy_from_slice(&orig.to_le_bytes());
        self.w.write_all(&r)?;
        self.w.write_all(&data[..incl as usize])
    }

    /// Flush the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }

    /// The underlying writer (not flushed: call [`flush`](Self::flush) first
    /// if it buffers).
    pub fn into_inner(self) -> W {
        self.w
    }
}

impl crate::metrics::sink::Capture for PcapWriter<super::atomic::AtomicFile> {
    fn write_packet(&mut self, at: SimTime, data: &[u8]) -> io::Result<()> {
        PcapWriter::write_packet(self, at, data)
    }
    fn commit(self: Box<Self>) -> io::Result<()> {
        self.into_inner().commit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_header_bytes() {
        let w = PcapWriter::new(Vec::new()).expect("vec write");
        assert_eq!(
            w.into_inner(),
            [
                0x4D, 0x3C, 0xB2, 0xA1, // magic, little-endian
                2, 0, 4, 0, // version 2.4
                0, 0, 0, 0, 0, 0, 0, 0, // thiszone, sigfigs
                0xFF, 0xFF, 0, 0, // snaplen 65535
                228, 0, 0, 0, // LINKTYPE_IPV4
            ]
        );
    }

    #[test]
    fn record_splits_seconds_and_nanos() {
        let mut w = PcapWriter::new(Vec::new()).expect("vec write");
        w.write_packet(SimTime::from_nanos(3_000_000_007), &[0xAA, 0xBB])
            .expect("write");
        let out = w.into_inner();
        assert_eq!(
            &out[24..],
            &[3, 0, 0, 0, 7, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 0xAA, 0xBB]
        );
    }

    #[test]
    fn oversized_packet_is_truncated_to_snaplen() {
        let mut w = PcapWriter::new(Vec::new()).expect("vec write");
        let data = vec![1u8; 70_000];
        w.write_packet(SimTime::ZERO, &data).expect("write");
        let out = w.into_inner();
        assert_eq!(out.len(), 24 + 16 + 65_535);
        assert_eq!(&out[32..36], &65_535u32.to_le_bytes());
        assert_eq!(&out[36..40], &70_000u32.to_le_bytes());
    }

    #[test]
    fn time_beyond_u32_seconds_is_an_error() {
        let mut w = PcapWriter::new(Vec::new()).expect("vec write");
        let t = SimTime::from_nanos((u64::from(u32::MAX) + 1) * NANOS_PER_SEC);
        let e = w.write_packet(t, &[1]).expect_err("too late");
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(w.into_inner().len(), 24, "nothing written on error");
    }
}
