//! Where a run's streamed outputs go. The simulator writes `messages.csv`
//! and `packets.csv` rows and captured packets into these sinks and never
//! opens a file itself: `report/` (atomic files, pcap writers) implements
//! them, and a caller that wants nothing on disk passes none.

use crate::sim::SimTime;
use std::io::{self, Write};

/// A streamed text output (`messages.csv`, `packets.csv`).
pub trait Sink: Write + Send {
    /// The stream is complete: make it final (an atomic file renames itself
    /// into place). Dropping a sink without committing discards it.
    fn commit(self: Box<Self>) -> io::Result<()>;
}

/// A packet capture (one per link or medium).
pub trait Capture: Send {
    /// Record one packet or frame sent at `at`.
    fn write_packet(&mut self, at: SimTime, data: &[u8]) -> io::Result<()>;
    /// The capture is complete: make it final.
    fn commit(self: Box<Self>) -> io::Result<()>;
}

/// A sink that keeps everything in memory (tests, in-process callers).
#[derive(Debug, Default)]
pub struct MemorySink(pub std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Write for MemorySink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| io::Error::other("memory sink poisoned"))?
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Sink for MemorySink {
    fn commit(self: Box<Self>) -> io::Result<()> {
        Ok(())
    }
}
