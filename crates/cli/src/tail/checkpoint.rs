//! Acknowledgement tracking and the checkpoint file.
//!
//! Every line read gets a slot in its file's [`Track`], in file order, holding
//! the offset just past the line. A line that is sent stays open until its
//! response arrives (responses come back out of order across batches); a
//! line that is not sent (blank, unparseable, sampled out by `honey`) is
//! closed at once. The committed offset advances only over a prefix of closed
//! slots, so it never passes a line the API has not answered. Memory: one
//! 16-byte slot per line between the oldest unanswered line and the newest
//! line read, bounded by the lines the SDK holds in flight.

use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// One generation of one file (a new one after rotation or truncation).
#[derive(Debug)]
pub struct Track {
    inner: Mutex<Inner>,
    /// False while a rotated file found after a restart is still being read.
    drained: AtomicBool,
}

#[derive(Debug)]
struct Inner {
    /// Sequence number of `slots[0]`.
    base: u64,
    slots: VecDeque<(u64, bool)>,
    /// Offset up to which every line has been answered (or needed no answer).
    committed: u64,
}

impl Track {
    /// A track whose lines start at `offset`.
    pub fn new(offset: u64) -> Self {
        Track {
            inner: Mutex::new(Inner {
                base: 0,
                slots: VecDeque::new(),
                committed: offset,
            }),
            drained: AtomicBool::new(true),
        }
    }

    /// A track for a rotated file still to be read to its end (see
    /// [`mark_drained`](Track::mark_drained)).
    pub fn draining(offset: u64) -> Self {
        let t = Track::new(offset);
        t.drained.store(false, Ordering::Relaxed);
        t
    }

    /// The file has been read to its end.
    pub fn mark_drained(&self) {
        self.drained.store(true, Ordering::Relaxed);
    }

    /// Has the file been read to its end (always, except while draining)?
    pub fn drained(&self) -> bool {
        self.drained.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere cannot leave the slots inconsistent (each change
        // is one push or one flag); keep going with them.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A line ending at `end` that needs no answer. One lock, no allocation
    /// while nothing is open.
    pub fn done(&self, end: u64) {
        let mut g = self.lock();
        if g.slots.is_empty() {
            g.committed = end;
        } else {
            g.slots.push_back((end, true));
        }
    }

    /// A line ending at `end` that is about to be sent; returns its sequence
    /// number for [`answered`](Track::answered). One lock.
    pub fn open(&self, end: u64) -> u64 {
        let mut g = self.lock();
        let seq = g.base + g.slots.len() as u64;
        g.slots.push_back((end, false));
        seq
    }

    /// The line `seq` was answered (or will never be sent). Advances the
    /// committed offset over every answered line at the front.
    pub fn answered(&self, seq: u64) {
        let mut g = self.lock();
        let Some(i) = seq.checked_sub(g.base) else {
            return;
        };
        if let Some(slot) = g.slots.get_mut(i as usize) {
            slot.1 = true;
        }
        while let Some(&(end, true)) = g.slots.front() {
            g.committed = end;
            g.slots.pop_front();
            g.base += 1;
        }
    }

    /// Offset up to which every line has been answered.
    pub fn committed(&self) -> u64 {
        self.lock().committed
    }

    /// Lines sent and not answered yet.
    pub fn open_lines(&self) -> usize {
        self.lock().slots.iter().filter(|s| !s.1).count()
    }
}

/// What the checkpoint file records for one path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Device and inode of the file the offset belongs to (0 where unknown).
    pub dev: u64,
    /// Inode.
    pub ino: u64,
    /// Every line before this byte offset has been answered.
    pub offset: u64,
    /// Files rotated away from this path whose lines were not all answered
    /// yet, oldest first: after a restart they are found again by device and
    /// inode in the same directory and read from their offset.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rotated: Vec<Rotated>,
}

/// A file rotated away from a followed path, with lines still unanswered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rotated {
    /// Device.
    pub dev: u64,
    /// Inode.
    pub ino: u64,
    /// Every line of it before this offset has been answered.
    pub offset: u64,
}

/// The checkpoint file: JSON `{"version":1,"files":{"/path":{"dev":..,"ino":..,"offset":..}}}`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct State {
    version: u32,
    /// Entries by absolute path.
    pub files: BTreeMap<PathBuf, Entry>,
}

/// The largest checkpoint file read (a few hundred bytes per file).
const MAX_STATE_BYTES: u64 = 16 << 20;

impl State {
    /// Loads a checkpoint; a missing file is an empty state.
    ///
    /// # Errors
    /// The file exists but cannot be read or is not a checkpoint.
    pub fn load(path: &Path) -> Result<State, String> {
        let data = match std::fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(State::default()),
            Err(e) => return Err(format!("cannot read checkpoint {}: {e}", path.display())),
            Ok(m) if m.len() > MAX_STATE_BYTES => {
                return Err(format!(
                    "checkpoint {} is too large to be one",
                    path.display()
                ))
            }
            Ok(_) => std::fs::read(path)
                .map_err(|e| format!("cannot read checkpoint {}: {e}", path.display()))?,
        };
        serde_json::from_slice(&data).map_err(|e| {
            format!(
                "checkpoint {} is not a honey checkpoint ({e}); move it away to start afresh",
                path.display()
            )
        })
    }

    /// Writes atomically: a temporary file next to `path`, synced, then
    /// renamed over it, so a crash leaves the old or the new state, never a
    /// torn one.
    ///
    /// # Errors
    /// The temporary file cannot be written or renamed.
    pub fn save(&mut self, path: &Path) -> std::io::Result<()> {
        self.version = 1;
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let mut f = std::fs::File::create(&tmp)?;
        serde_json::to_writer(&mut f, self)?;
        f.write_all(b"\n")?;
        f.sync_data()?;
        drop(f);
        std::fs::rename(&tmp, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_only_answered_prefix() {
        let t = Track::new(0);
        let a = t.open(10);
        let b = t.open(20);
        t.done(25); // blank line after b
        let c = t.open(30);
        assert_eq!(t.committed(), 0);
        t.answered(c);
        t.answered(b);
        assert_eq!(t.committed(), 0, "a is still open");
        assert_eq!(t.open_lines(), 1);
        t.answered(a);
        assert_eq!(t.committed(), 30);
        t.done(40);
        assert_eq!(t.committed(), 40);
        t.answered(a); // a late duplicate changes nothing
        assert_eq!(t.committed(), 40);
    }

    #[test]
    fn state_round_trip_and_bad_file() {
        let dir = std::env::temp_dir().join(format!("honey-ckpt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("state.json");
        let _ = std::fs::remove_file(&p);
        assert!(State::load(&p).unwrap().files.is_empty());
        let mut s = State::default();
        s.files.insert(
            "/x.log".into(),
            Entry {
                dev: 1,
                ino: 2,
                offset: 3,
                rotated: vec![Rotated {
                    dev: 1,
                    ino: 9,
                    offset: 4,
                }],
            },
        );
        s.save(&p).unwrap();
        let e = &State::load(&p).unwrap().files[Path::new("/x.log")];
        assert_eq!((e.offset, e.rotated[0].ino, e.rotated[0].offset), (3, 9, 4));
        // Files written before `rotated` existed still load.
        std::fs::write(
            &p,
            r#"{"version":1,"files":{"/y":{"dev":1,"ino":2,"offset":5}}}"#,
        )
        .unwrap();
        assert!(State::load(&p).unwrap().files[Path::new("/y")]
            .rotated
            .is_empty());
        std::fs::write(&p, "garbage").unwrap();
        assert!(State::load(&p)
            .unwrap_err()
            .contains("not a honey checkpoint"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
