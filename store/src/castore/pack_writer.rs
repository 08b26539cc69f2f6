//! Appending chunks to this process's pack file (see [`super::backend::LocalBackend`]).
//!
//! On Linux the pack is written with direct I/O (`O_DIRECT`): chunks are copied into an
//! aligned staging buffer, and each full buffer is written by a thread of its own while
//! chunking and hashing go on. The page cache is bypassed, so the kernel neither copies
//! every byte into it nor tracks the pages as dirty and writes them back (in an import
//! that cost more CPU time than the copy into the staging buffer), and the disk is busy
//! from the first buffer on. Direct I/O writes whole aligned blocks only: what follows the
//! last whole block (the tail) is written through an ordinary handle when the pack is
//! flushed or synced, and written again, with the same bytes, by the next direct write of
//! its block. No padding is ever written: the file never holds more than what was
//! appended, and bytes once written never change (the invariant that keeps memory maps
//! of packs valid).
//!
//! Where direct I/O is refused (a file system without it, a device needing a larger
//! alignment, another system), the pack is written through a buffer instead and its
//! writeback started every [`WRITEBACK_STEP`] bytes from a thread of its own.

use std::fs;
use std::io::{self, Write};
#[cfg(target_os = "linux")]
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex};

/// Start writing a buffered pack's bytes back to disk every this many bytes, so that the
/// sync before a commit finds little left to write.
const WRITEBACK_STEP: u64 = 32 << 20;

/// The pack being appended to.
pub(super) struct PackWriter {
    len: u64,
    out: Output,
}

enum Output {
    #[cfg(target_os = "linux")]
    Direct(Direct),
    Buffered(Buffered),
}

impl PackWriter {
    /// Creates the pack file at `path` (which must not exist).
    pub(super) fn create(path: &Path) -> io::Result<Self> {
        Self::create_with(path, true)
    }

    /// [`PackWriter::create`], with direct I/O only if `direct` (and available).
    fn create_with(path: &Path, direct: bool) -> io::Result<Self> {
        let file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)?;
        #[cfg(target_os = "linux")]
        {
            if let Some(d) = direct.then(|| Direct::open(path, &file)).flatten() {
                return Ok(PackWriter {
                    len: 0,
                    out: Output::Direct(d),
                });
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = direct;
        Ok(PackWriter {
            len: 0,
            out: Output::Buffered(Buffered::new(file)),
        })
    }

    /// Bytes appended so far: the offset of the next chunk.
    pub(super) fn len(&self) -> u64 {
        self.len
    }

    /// Appends `data` (readable through the file once [`PackWriter::flush`] returns).
    pub(super) fn append(&mut self, data: &[u8]) -> io::Result<()> {
        match &mut self.out {
            #[cfg(target_os = "linux")]
            Output::Direct(d) => d.append(data)?,
            Output::Buffered(b) => b.append(data, self.len + data.len() as u64)?,
        }
        self.len += data.len() as u64;
        Ok(())
    }

    /// Writes everything appended to the file (not necessarily to the disk).
    pub(super) fn flush(&mut self) -> io::Result<()> {
        match &mut self.out {
            #[cfg(target_os = "linux")]
            Output::Direct(d) => d.flush(),
            Output::Buffered(b) => b.out.flush(),
        }
    }

    /// Makes everything appended durable.
    pub(super) fn sync(&mut self) -> io::Result<()> {
        self.flush()?;
        match &self.out {
            #[cfg(target_os = "linux")]
            Output::Direct(d) => d.plain.sync_data(),
            Output::Buffered(b) => b.out.get_ref().sync_data(),
        }
    }
}

/// A pack written through a buffer, its writeback started every [`WRITEBACK_STEP`] bytes.
struct Buffered {
    out: io::BufWriter<fs::File>,
    /// Bytes whose writeback was started.
    written_back: u64,
    /// Where to ask for the writeback of a range (offset, length) to be started.
    writeback: Option<SyncSender<(u64, u64)>>,
}

impl Buffered {
    fn new(file: fs::File) -> Self {
        let writeback = file.try_clone().ok().and_then(writeback_thread);
        Buffered {
            // Chunks of at least CHUNK_MIN bytes bypass the buffer (BufWriter writes
            // data at least as large as its capacity directly); it gathers small files.
            out: io::BufWriter::with_capacity(super::CHUNK_MIN, file),
            written_back: 0,
            writeback,
        }
    }

    /// Appends `data`; `len` is the pack's length after it.
    fn append(&mut self, data: &[u8], len: u64) -> io::Result<()> {
        self.out.write_all(data)?;
        if len - self.written_back >= WRITEBACK_STEP {
            self.out.flush()?;
            if let Some(tx) = &self.writeback {
                // A full queue means the disk is behind; the sync before the commit
                // waits for it anyway, so the range is simply left to that sync.
                let _ = tx.try_send((self.written_back, len - self.written_back));
            }
            self.written_back = len;
        }
        Ok(())
    }
}

/// Starts the writeback of ranges of a pack on a thread of its own, until the sender is
/// dropped. `sync_file_range` can block while the disk's queue is full; on the writing
/// thread that would stall chunking and hashing, here it only delays the writeback, so
/// the CPU work of an import overlaps with the disk's.
fn writeback_thread(file: fs::File) -> Option<SyncSender<(u64, u64)>> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<(u64, u64)>(16);
    std::thread::Builder::new()
        .name("pack-writeback".into())
        .spawn(move || {
            for (from, n) in rx {
                #[cfg(target_os = "linux")]
                {
                    use std::os::fd::AsRawFd;
                    // SAFETY: `file` is open for the life of this thread. A failure
                    // only means the final sync has more to write.
                    unsafe {
                        libc::sync_file_range(
                            file.as_raw_fd(),
                            from as libc::off64_t,
                            n as libc::off64_t,
                            libc::SYNC_FILE_RANGE_WRITE,
                        )
                    };
                }
                #[cfg(not(target_os = "linux"))]
                let _ = (&file, from, n);
            }
        })
        .ok()?;
    Some(tx)
}

/// Alignment of direct I/O (offsets, lengths and memory): the page size, a multiple of
/// every block size in use.
#[cfg(target_os = "linux")]
const ALIGN: usize = 4096;

/// Bytes gathered before a direct write (a multiple of [`ALIGN`]).
#[cfg(target_os = "linux")]
const STAGE: usize = 4 << 20;

/// Staging buffers at most: the one being filled and those being written.
#[cfg(target_os = "linux")]
const BUFFERS: usize = 4;

/// A buffer of [`STAGE`] bytes aligned to [`ALIGN`] (an aligned window into a larger
/// allocation, which is never resized, so the window stays aligned).
#[cfg(target_os = "linux")]
struct AlignedBuf {
    raw: Vec<u8>,
    at: usize,
}

#[cfg(target_os = "linux")]
impl AlignedBuf {
    fn new() -> Option<Self> {
        let raw = vec![0u8; STAGE + ALIGN];
        let at = raw.as_ptr().align_offset(ALIGN);
        (at < ALIGN).then_some(AlignedBuf { raw, at })
    }

    fn bytes(&self) -> &[u8] {
        &self.raw[self.at..self.at + STAGE]
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.raw[self.at..self.at + STAGE]
    }
}

/// A pack written with direct I/O (see the module's documentation).
#[cfg(target_os = "linux")]
struct Direct {
    /// The `O_DIRECT` handle, shared with the writing thread.
    direct: Arc<fs::File>,
    /// An ordinary handle: the tail is written and the file synced through it.
    plain: Arc<fs::File>,
    /// The buffer being filled; `stage.bytes()[..filled]` belongs at offset `stage_at`
    /// of the file (a multiple of [`ALIGN`]).
    stage: AlignedBuf,
    filled: usize,
    stage_at: u64,
    /// Whether the file holds everything appended (no append since the last flush).
    flushed: bool,
    /// Full buffers to write, with their offsets, to the writing thread.
    jobs: Option<SyncSender<(AlignedBuf, u64)>>,
    /// Buffers the thread has written, coming back.
    written: Receiver<AlignedBuf>,
    /// Buffers ready to be filled.
    pool: Vec<AlignedBuf>,
    /// Buffers allocated so far, and those with the thread.
    allocated: usize,
    outstanding: usize,
    /// The first error of the writing thread.
    error: Arc<Mutex<Option<io::Error>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[cfg(target_os = "linux")]
impl Direct {
    /// Opens `path` (just created as `plain`) for direct I/O; `None` where the file system
    /// refuses it.
    fn open(path: &Path, plain: &fs::File) -> Option<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        let direct = fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_DIRECT)
            .open(path)
            .ok()?;
        let plain = Arc::new(plain.try_clone().ok()?);
        let direct = Arc::new(direct);
        let stage = AlignedBuf::new()?;
        let (jobs, job_rx) = std::sync::mpsc::sync_channel::<(AlignedBuf, u64)>(BUFFERS);
        let (written_tx, written) = std::sync::mpsc::channel();
        let error = Arc::new(Mutex::new(None));
        let thread = {
            let (direct, plain, error) = (direct.clone(), plain.clone(), error.clone());
            std::thread::Builder::new()
                .name("pack-writer".into())
                .spawn(move || {
                    for (buf, at) in job_rx {
                        if let Err(e) = write_direct(&direct, &plain, buf.bytes(), at) {
                            if let Ok(mut slot) = error.lock() {
                                slot.get_or_insert(e);
                            }
                        }
                        if written_tx.send(buf).is_err() {
                            break;
                        }
                    }
                })
                .ok()?
        };
        Some(Direct {
            direct,
            plain,
            stage,
            filled: 0,
            stage_at: 0,
            flushed: true,
            jobs: Some(jobs),
            written,
            pool: Vec::new(),
            allocated: 1,
            outstanding: 0,
            error,
            thread: Some(thread),
        })
    }

    fn append(&mut self, mut data: &[u8]) -> io::Result<()> {
        self.flushed = false;
        while !data.is_empty() {
            let n = (STAGE - self.filled).min(data.len());
            self.stage.bytes_mut()[self.filled..self.filled + n].copy_from_slice(&data[..n]);
            self.filled += n;
            data = &data[n..];
            if self.filled == STAGE {
                self.submit()?;
            }
        }
        Ok(())
    }

    /// Hands the full stage to the writing thread and starts a fresh one.
    fn submit(&mut self) -> io::Result<()> {
        self.check()?;
        let next = self.free_buffer()?;
        let full = std::mem::replace(&mut self.stage, next);
        let jobs = self.jobs.as_ref().ok_or_else(thread_gone)?;
        jobs.send((full, self.stage_at))
            .map_err(|_| thread_gone())?;
        self.outstanding += 1;
        self.stage_at += STAGE as u64;
        self.filled = 0;
        Ok(())
    }

    /// A buffer to fill: a written one, a new one while fewer than [`BUFFERS`] exist, or
    /// the next one the thread finishes.
    fn free_buffer(&mut self) -> io::Result<AlignedBuf> {
        if let Some(b) = self.pool.pop() {
            return Ok(b);
        }
        if self.allocated < BUFFERS {
            if let Some(b) = AlignedBuf::new() {
                self.allocated += 1;
                return Ok(b);
            }
        }
        let b = self.written.recv().map_err(|_| thread_gone())?;
        self.outstanding -= 1;
        Ok(b)
    }

    /// The writing thread's error, if it had one.
    fn check(&self) -> io::Result<()> {
        match self.error.lock() {
            Ok(mut slot) => slot.take().map_or(Ok(()), Err),
            Err(_) => Err(thread_gone()),
        }
    }

    /// Waits for the writing thread, then writes the stage: its whole blocks directly,
    /// the tail through the ordinary handle. The tail's block stays at the front of the
    /// stage, to be written again with what follows it.
    fn flush(&mut self) -> io::Result<()> {
        while self.outstanding > 0 {
            let b = self.written.recv().map_err(|_| thread_gone())?;
            self.outstanding -= 1;
            self.pool.push(b);
        }
        self.check()?;
        if self.flushed {
            return Ok(());
        }
        let whole = self.filled / ALIGN * ALIGN;
        if whole > 0 {
            write_direct(
                &self.direct,
                &self.plain,
                &self.stage.bytes()[..whole],
                self.stage_at,
            )?;
        }
        if self.filled > whole {
            self.plain.write_all_at(
                &self.stage.bytes()[whole..self.filled],
                self.stage_at + whole as u64,
            )?;
        }
        if whole > 0 {
            self.stage.bytes_mut().copy_within(whole..self.filled, 0);
            self.filled -= whole;
            self.stage_at += whole as u64;
        }
        self.flushed = true;
        Ok(())
    }
}

#[cfg(target_os = "linux")]
impl Drop for Direct {
    fn drop(&mut self) {
        // What was not synced is not named by any committed location: the thread only
        // has to finish (or be stopped) before the files are closed.
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Writes `data` (whole aligned blocks) at `at` through the direct handle; what the
/// direct write does not take (the file system refuses the alignment, or took only a
/// part) goes through the ordinary handle, to the same place.
#[cfg(target_os = "linux")]
fn write_direct(direct: &fs::File, plain: &fs::File, data: &[u8], at: u64) -> io::Result<()> {
    let mut done = 0;
    while done < data.len() {
        match direct.write_at(&data[done..], at + done as u64) {
            Ok(0) => break,
            // A short write leaves an unaligned rest, which direct I/O cannot take.
            Ok(n) => {
                done += n;
                break;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => break,
            Err(e) => return Err(e),
        }
    }
    if done < data.len() {
        plain.write_all_at(&data[done..], at + done as u64)?;
    }
    Ok(())
}

#[cfg(target_os = "linux")]
fn thread_gone() -> io::Error {
    io::Error::other("the pack writing thread stopped")
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::castore::tests::pseudo_random as bytes;

    /// Appends pieces of awkward sizes (across blocks and staging buffers), flushing
    /// after some: after each flush the file holds exactly what was appended.
    fn check_appends(direct: bool) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.pack");
        let mut w = PackWriter::create_with(&path, direct).unwrap();
        let mut expected = Vec::new();
        let sizes = [
            1usize,
            4095,
            4096,
            4097,
            100,
            65536,
            5 << 20,
            7,
            8191,
            3 << 20,
            4096,
            1,
            12345,
        ];
        for (i, size) in sizes.into_iter().enumerate() {
            let piece = bytes(size, i as u64 + 1);
            assert_eq!(w.len(), expected.len() as u64);
            w.append(&piece).unwrap();
            expected.extend_from_slice(&piece);
            if i % 3 != 1 {
                w.flush().unwrap();
                let on_disk = fs::read(&path).unwrap();
                assert_eq!(on_disk.len(), expected.len(), "after piece {i}");
                assert!(on_disk == expected, "contents differ after piece {i}");
            }
        }
        w.sync().unwrap();
        assert!(fs::read(&path).unwrap() == expected);
        // Flushing again without appending changes nothing.
        w.flush().unwrap();
        assert!(fs::read(&path).unwrap() == expected);
    }

    #[test]
    fn direct_pack_holds_what_was_appended() {
        check_appends(true);
    }

    #[test]
    fn buffered_pack_holds_what_was_appended() {
        check_appends(false);
    }
}
