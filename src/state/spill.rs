//! Spill to disk: the JSON-lines file that keeps events posthaste could not deliver, and
//! reading the files of earlier runs back for replay.
//!
//! Each running instance appends to its own file, `spill-<millis>-<pid>-<n>.jsonl` in the spill
//! directory, and holds an exclusive `flock` on it until its shutdown completes (anything
//! spilled later, e.g. by a send after shutdown, goes to a new file). A file nobody holds a lock
//! on belongs to a run that ended: replay takes the lock, reads it, and removes it once
//! every event read from it has an outcome. The lock is what lets several processes share one
//! directory (an old instance still shutting down while its replacement starts) without two of
//! them replaying the same file. A new file is created under a hidden temporary name, locked,
//! and only then renamed into place, so a replaying process can never take a file whose owner
//! is about to lock it.
//!
//! Format: one event per line, exactly the JSON that would have been sent, with raw line
//! breaks (only possible as whitespace between JSON tokens) turned into spaces. Every append is
//! one `write` of whole lines followed by `fdatasync`; if either fails the file is truncated
//! back to its last good length, so a file only ever ends in a torn line if the process died
//! mid-write. Replay skips (and counts) torn and corrupt lines.
//!
//! Owns files and bytes only: no threads, no counters, no outcomes.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

use crate::error::Error;
use crate::event::Event;

/// Distinguishes instances started by one process in the same millisecond.
static NEXT_FILE: AtomicU64 = AtomicU64::new(0);

pub(crate) struct Spill {
    dir: PathBuf,
    max_bytes: u64,
    writer: Mutex<Writer>,
}

struct Writer {
    /// The open, locked file and its path; `None` once closed (a new one is made on demand).
    file: Option<(File, PathBuf)>,
    /// Bytes known to be in the file (all whole lines).
    len: u64,
}

/// Events read back from the files of earlier runs, and those files (locked).
pub(crate) struct Orphans {
    pub(crate) events: Vec<Event>,
    /// Torn or corrupt lines skipped.
    pub(crate) skipped: u64,
    pub(crate) files: ReplayFiles,
}

/// Spill files taken for replay: locked until removed (or, if kept, until dropped).
#[derive(Default)]
pub(crate) struct ReplayFiles {
    files: Mutex<Vec<(PathBuf, File)>>,
}

impl ReplayFiles {
    /// Removes the files (their events all have an outcome now) and releases their locks.
    pub(crate) fn remove(&self) {
        for (path, file) in self.files.lock().drain(..) {
            // Unlink while still holding the lock, so nobody can take the file in between.
            let _ = fs::remove_file(&path);
            drop(file);
        }
    }

    /// Keeps the files for a later replay and releases their locks.
    pub(crate) fn release(&self) {
        self.files.lock().clear();
    }
}

impl Spill {
    /// Creates (if needed) `dir` and this instance's spill file in it.
    pub(crate) fn open(dir: &Path, max_bytes: u64) -> Result<Spill, Error> {
        let err = |reason: String| Error::Spill { path: dir.display().to_string(), reason };
        fs::create_dir_all(dir).map_err(|e| err(format!("cannot create the directory: {e}")))?;
        if !dir.is_dir() {
            return Err(err("not a directory".into()));
        }
        let file = create(dir).map_err(err)?;
        Ok(Spill {
            dir: dir.to_path_buf(),
            max_bytes,
            writer: Mutex::new(Writer { file: Some(file), len: 0 }),
        })
    }

    /// This instance's current file.
    #[cfg(test)]
    pub(crate) fn path(&self) -> Option<PathBuf> {
        self.writer.lock().file.as_ref().map(|(_, p)| p.clone())
    }

    /// Closes the current file, releasing its lock (removing it if empty): from now on it is
    /// a finished run's file, which the next start may replay. A later append makes a new
    /// file.
    pub(crate) fn close(&self) {
        let mut w = self.writer.lock();
        if let Some((file, path)) = w.file.take() {
            if w.len == 0 {
                let _ = fs::remove_file(&path);
            }
            drop(file);
        }
        w.len = 0;
    }

    /// Appends `events` (as many leading ones as fit under the size cap), durably: the lines
    /// are written and synced to disk before this returns. Returns how many were written:
    /// 0 if nothing fits, the disk refuses, or (with `wait`) the file stays busy that long.
    pub(crate) fn append<'a>(
        &self,
        events: impl IntoIterator<Item = &'a Event>,
        wait: Option<Duration>,
    ) -> usize {
        let mut w = match wait {
            None => self.writer.lock(),
            Some(d) => match self.writer.try_lock_for(d) {
                Some(w) => w,
                None => return 0,
            },
        };
        let mut buf = Vec::new();
        let mut n = 0;
        for event in events {
            let start = buf.len();
            write_line(event, &mut buf);
            if w.len + buf.len() as u64 > self.max_bytes {
                buf.truncate(start);
                break;
            }
            n += 1;
        }
        if n == 0 {
            return 0;
        }
        if w.file.is_none() {
            match create(&self.dir) {
                Ok(file) => w.file = Some(file),
                Err(_) => return 0,
            }
        }
        let len = w.len;
        let Some((file, _)) = &mut w.file else { return 0 };
        let written = (&*file).write_all(&buf).and_then(|()| file.sync_data());
        match written {
            Ok(()) => {
                w.len += buf.len() as u64;
                n
            }
            Err(_) => {
                // Never leave a partial line for the next append to be glued to.
                let _ = file.set_len(len);
                0
            }
        }
    }

    /// Takes the files of runs that have ended (unlocked), up to about `max_bytes` of them,
    /// oldest first, and reads their events.
    pub(crate) fn take_orphans(&self) -> Orphans {
        let mut orphans = Orphans { events: Vec::new(), skipped: 0, files: ReplayFiles::default() };
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return orphans;
        };
        let mut names: Vec<(String, PathBuf)> = entries
            .filter_map(Result::ok)
            .filter_map(|e| Some((e.file_name().into_string().ok()?, e.path())))
            .collect();
        names.sort();
        let own = self.writer.lock().file.as_ref().map(|(_, p)| p.clone());
        let mut loaded = 0u64;
        let mut taken = Vec::new();
        for (name, path) in names {
            if Some(&path) == own.as_ref() {
                continue;
            }
            if name.starts_with(".spill-") && name.ends_with(".jsonl.tmp") {
                // A file created by an instance that died before renaming it: empty.
                if let Ok(file) = File::open(&path) {
                    if try_lock(&file) && !is_deleted(&file) {
                        let _ = fs::remove_file(&path);
                    }
                }
                continue;
            }
            if !(name.starts_with("spill-") && name.ends_with(".jsonl")) || loaded >= self.max_bytes {
                continue;
            }
            let Ok(mut file) = File::open(&path) else { continue };
            // Locked: its instance is alive. Deleted: another replay finished with it between
            // our listing and our lock.
            if !try_lock(&file) || is_deleted(&file) {
                continue;
            }
            let mut bytes = Vec::new();
            if file.read_to_end(&mut bytes).is_err() {
                continue; // Unreadable now; left for a later start.
            }
            loaded += bytes.len() as u64;
            orphans.skipped += parse_lines(&bytes, &mut orphans.events);
            taken.push((path, file));
        }
        *orphans.files.files.lock() = taken;
        orphans
    }
}

impl Drop for Spill {
    fn drop(&mut self) {
        self.close();
    }
}

/// Creates a new spill file in `dir`, locked, under its final name.
fn create(dir: &Path) -> Result<(File, PathBuf), String> {
    let millis = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
    let n = NEXT_FILE.fetch_add(1, Ordering::Relaxed);
    let name = format!("spill-{millis:013}-{}-{n}.jsonl", std::process::id());
    // Created and locked under a name replay ignores, then renamed: nobody can take the file
    // between its creation and its lock.
    let tmp = dir.join(format!(".{name}.tmp"));
    let path = dir.join(&name);
    let file = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(&tmp)
        .map_err(|e| format!("cannot create a file in it: {e}"))?;
    if !try_lock(&file) {
        let _ = fs::remove_file(&tmp);
        return Err("cannot lock a new file in it (flock)".into());
    }
    if let Err(e) = fs::rename(&tmp, &path) {
        let _ = fs::remove_file(&tmp);
        return Err(format!("cannot rename a file in it: {e}"));
    }
    sync_dir(dir);
    Ok((file, path))
}

/// Appends `event` as one line.
fn write_line(event: &Event, out: &mut Vec<u8>) {
    let start = out.len();
    event.write_json(out);
    // Valid JSON holds raw CR/LF only as whitespace between tokens (inside strings they must
    // be escaped), so replacing them with spaces keeps the value and makes it one line.
    for b in &mut out[start..] {
        if *b == b'\n' || *b == b'\r' {
            *b = b' ';
        }
    }
    out.push(b'\n');
}

/// Reads the events of one file into `events`; returns the number of lines skipped.
fn parse_lines(bytes: &[u8], events: &mut Vec<Event>) -> u64 {
    let mut skipped = 0;
    let mut rest = bytes;
    while !rest.is_empty() {
        let Some(end) = rest.iter().position(|b| *b == b'\n') else {
            // No newline: the process died mid-write. Even if it parses (a truncated number
            // does), it is not what was spilled.
            skipped += 1;
            break;
        };
        let line = &rest[..end];
        rest = &rest[end + 1..];
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match Event::from_json_bytes(line.to_vec()) {
            Ok(event) => events.push(event),
            Err(_) => skipped += 1,
        }
    }
    skipped
}

/// Makes a rename in `dir` durable.
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Takes an exclusive lock on `file` without waiting. True if taken.
#[cfg(unix)]
#[allow(unsafe_code)] // flock(2) on a descriptor we own; no memory crosses the boundary.
fn try_lock(file: &File) -> bool {
    use std::os::unix::io::AsRawFd;
    // SAFETY: the descriptor is valid for the duration of the call (borrowed from `file`).
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

/// Without flock, files are not shared safely between running processes (documented).
#[cfg(not(unix))]
fn try_lock(_file: &File) -> bool {
    true
}

#[cfg(unix)]
fn is_deleted(file: &File) -> bool {
    use std::os::unix::fs::MetadataExt;
    file.metadata().map_or(true, |m| m.nlink() == 0)
}

#[cfg(not(unix))]
fn is_deleted(_file: &File) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn temp_dir(tag: &str) -> PathBuf {
        let n = NEXT_FILE.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("posthaste-unit-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn spill_files(dir: &Path) -> Vec<PathBuf> {
        let mut v: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn lines_are_single_line_json() {
        let mut out = Vec::new();
        write_line(&Event::from_json_bytes(b"{\n  \"a\": \"x\\ny\"\r\n}".to_vec()).unwrap(), &mut out);
        write_line(&Event::from(json!({"b": [1, 2]})), &mut out);
        assert_eq!(out, b"{   \"a\": \"x\\ny\"  }\n{\"b\":[1,2]}\n");
        let mut events = Vec::new();
        assert_eq!(parse_lines(&out, &mut events), 0);
        assert_eq!(events[0].clone().into_value(), json!({"a": "x\ny"}));
    }

    #[test]
    fn torn_and_corrupt_lines_are_skipped_and_counted() {
        let mut events = Vec::new();
        let skipped = parse_lines(b"{\"a\":1}\nnot json\n\n{\"b\":2}\n123", &mut events);
        assert_eq!(skipped, 2, "the corrupt line and the torn (unterminated) one");
        assert_eq!(events.len(), 2);
        assert_eq!(parse_lines(b"", &mut events), 0);
    }

    #[test]
    fn append_respects_the_cap_and_replay_takes_only_unlocked_files() {
        let dir = temp_dir("cap");
        let one = Event::from(json!({"i": 1})); // 8 bytes per line
        let live = Spill::open(&dir, 20).unwrap();
        assert_eq!(live.append([&one, &one, &one], None), 2, "only two lines fit in 20 bytes");
        assert_eq!(live.append([&one], None), 0);
        assert_eq!(fs::read(live.path().unwrap()).unwrap(), b"{\"i\":1}\n{\"i\":1}\n");

        // The file is locked while its instance lives: another instance doesn't take it.
        let other = Spill::open(&dir, 1 << 20).unwrap();
        let orphans = other.take_orphans();
        assert!(orphans.events.is_empty());
        drop(orphans);

        drop(live);
        let orphans = other.take_orphans();
        assert_eq!(orphans.events.len(), 2);
        // Taken: a third instance doesn't see it while the replay holds it.
        let third = Spill::open(&dir, 1 << 20).unwrap();
        assert!(third.take_orphans().events.is_empty());
        orphans.files.remove();
        drop((other, third));
        assert!(spill_files(&dir).is_empty(), "{:?}", spill_files(&dir));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn closing_releases_the_file_and_later_appends_start_a_new_one() {
        let dir = temp_dir("close");
        let a = Spill::open(&dir, 1 << 20).unwrap();
        let first = a.path().unwrap();
        a.append([&Event::from(json!(1))], None);
        a.close();
        assert_eq!(a.path(), None);
        // Released: another instance takes it while `a` is still alive.
        let b = Spill::open(&dir, 1 << 20).unwrap();
        let orphans = b.take_orphans();
        assert_eq!(orphans.events.len(), 1);
        orphans.files.remove();
        assert!(!first.exists());
        // `a` spills again after closing: into a new file.
        assert_eq!(a.append([&Event::from(json!(2))], None), 1);
        assert_ne!(a.path().unwrap(), first);
        drop((a, b));
        assert_eq!(spill_files(&dir).len(), 1, "a's second file, not empty");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn released_files_are_replayed_again() {
        let dir = temp_dir("release");
        let a = Spill::open(&dir, 1 << 20).unwrap();
        a.append([&Event::from(json!(1))], None);
        drop(a);
        let b = Spill::open(&dir, 1 << 20).unwrap();
        let orphans = b.take_orphans();
        assert_eq!(orphans.events.len(), 1);
        orphans.files.release();
        assert_eq!(b.take_orphans().events.len(), 1);
        drop(b);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn open_refuses_a_file_as_directory() {
        let dir = temp_dir("notdir");
        fs::create_dir_all(&dir).unwrap();
        let file = dir.join("plain");
        fs::write(&file, b"x").unwrap();
        let err = Spill::open(&file, 1).err().unwrap();
        assert!(err.to_string().contains("plain"), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
