//! Atomic output files: write to `<name>.tmp` beside the target, then rename.
//! A reader never sees a half-written result file, and an interrupted run
//! leaves the previous complete file (or none) plus a `.tmp` to clean up.
//!
//! Results are also fsynced before the rename (durable across a machine
//! crash). Files that can be redone cheaply — a sweep's per-run fragments,
//! charts redrawn from the CSVs — use the `unsynced` variants: still atomic
//! against a killed process, which is what `--resume` relies on, without an
//! fsync wait per file (on a virtual disk that wait dominated a sweep of
//! short runs).

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// A file being written; `commit` renames it into place, dropping it
/// uncommitted removes the temporary file.
pub struct AtomicFile {
    tmp: PathBuf,
    target: PathBuf,
    writer: Option<BufWriter<File>>,
    sync: bool,
}

impl AtomicFile {
    /// Start writing `target` (fsynced on `commit`).
    pub fn create(target: &Path) -> io::Result<Self> {
        Self::open(target, true)
    }
    /// Start writing `target`, renamed into place on `commit` without fsync.
    pub fn create_unsynced(target: &Path) -> io::Result<Self> {
        Self::open(target, false)
    }
    fn open(target: &Path, sync: bool) -> io::Result<Self> {
        let mut name = target.file_name().unwrap_or_default().to_os_string();
        name.push(".tmp");
        let tmp = target.with_file_name(name);
        let f = File::create(&tmp)?;
        Ok(AtomicFile {
            tmp,
            target: target.to_path_buf(),
            writer: Some(BufWriter::with_capacity(1 << 16, f)),
            sync,
        })
    }
    /// Flush, fsync (unless unsynced) and rename into place.
    pub fn commit(mut self) -> io::Result<()> {
        if let Some(w) = self.writer.take() {
            let f = w.into_inner().map_err(|e| e.into_error())?;
            if self.sync {
                f.sync_all()?;
            }
        }
        fs::rename(&self.tmp, &self.target)
    }
    /// Flush and rename into place now, and hand back the file so the
    /// caller can fsync it later (e.g. on another thread while it does other
    /// work): as atomic as `commit` against a killed process, durable once
    /// the returned file's `sync_all` has returned.
    pub fn commit_sync_later(mut self) -> io::Result<File> {
        let w = self.w()?;
        w.flush()?;
        let f = w.get_ref().try_clone()?;
        fs::rename(&self.tmp, &self.target)?;
        // renamed: nothing left for Drop to remove
        self.writer = None;
        Ok(f)
    }
    /// Append the rest of `src` (from its current position): the buffer is
    /// flushed, then the bytes go file to file (`copy_file_range` on Linux,
    /// no copy through user space).
    pub fn append_from(&mut self, src: &mut File) -> io::Result<u64> {
        let w = self.w()?;
        w.flush()?;
        io::copy(src, w.get_mut())
    }
    fn w(&mut self) -> io::Result<&mut BufWriter<File>> {
        self.writer
            .as_mut()
            .ok_or_else(|| io::Error::other("write after commit"))
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.w()?.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.w()?.flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.writer.take().is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Write a whole file atomically (fsynced).
pub fn write_atomic(target: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = AtomicFile::create(target)?;
    f.write_all(bytes)?;
    f.commit()
}

/// Write a whole file atomically, without fsync (see the module doc).
pub fn write_atomic_unsynced(target: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = AtomicFile::create_unsynced(target)?;
    f.write_all(bytes)?;
    f.commit()
}

impl crate::metrics::sink::Sink for AtomicFile {
    fn commit(self: Box<Self>) -> io::Result<()> {
        AtomicFile::commit(*self)
    }
}
