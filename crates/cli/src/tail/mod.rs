//! `honey tail`: follow files (or read stdin), parse each line, send it as an
//! event, and checkpoint only past lines the API has answered.
//!
//! One thread reads and parses (this one), the SDK's threads batch, encode
//! and send, one thread reads responses and closes lines in their file's
//! [`checkpoint::Track`], and an optional one prints progress.
//! Backpressure: `block_on_send` makes this thread wait while the SDK's queue
//! is full, and `block_on_response` makes the SDK wait for the response
//! reader, so no response (and no checkpoint advance) is ever dropped.

pub mod checkpoint;
pub mod parse;
pub mod sample;
pub mod timefmt;

use std::fs::File;
use std::io::{BufRead, BufReader, IsTerminal, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use libhoney::{Builder, Client, FieldName, ResponseError, SendError, Value};
use sha2::{Digest, Sha256};

use crate::{error, exit, infer, send, signals, ParserKind, ReadFrom, TailArgs};
use checkpoint::{Entry, Rotated, State, Track};
use parse::Parser;
use sample::DynSampler;
use timefmt::TimeFormat;

/// The longest line read; longer ones are skipped up to their newline and
/// counted as unparseable (the API refuses events over 1,000,000 bytes anyway).
pub const MAX_LINE_BYTES: usize = 1 << 20;
/// Read buffer per file.
const READ_BUFFER_BYTES: usize = 256 * 1024;
/// Lines read from one file before the next file gets its turn.
const LINES_PER_TURN: usize = 4096;
/// Unparseable lines and failed events reported individually on stderr
/// (each kind); the rest are only counted.
const MAX_REPORTS: u64 = 10;
/// How often the progress line is refreshed.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);
/// Longest wait at exit for the SDK to deliver what is queued.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Default)]
struct Stats {
    read: AtomicU64,
    sent: AtomicU64,
    failed: AtomicU64,
    unparsed: AtomicU64,
    sampled: AtomicU64,
    blank: AtomicU64,
    bad_time: AtomicU64,
    failures_reported: AtomicU64,
    /// Events not delivered (transport, 5xx, 401, ...): their lines stay
    /// unanswered, holding the checkpoint back, and reading stops.
    undelivered: AtomicU64,
}

impl Stats {
    fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
    fn inc(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// Metadata on each event: which line of which file generation it is.
struct LineRef {
    track: Arc<Track>,
    seq: u64,
    file: Arc<str>,
    line: u64,
}

/// Field operations, applied in this order: rename, drop, scrub, add.
struct FieldOps {
    rename: Vec<(String, String)>,
    drop: Vec<String>,
    scrub: Vec<String>,
    /// Names given by --add-field (set on the builder): parsed fields of the
    /// same name are dropped so the added value wins.
    added: Vec<String>,
}

impl FieldOps {
    fn is_empty(&self) -> bool {
        self.rename.is_empty()
            && self.drop.is_empty()
            && self.scrub.is_empty()
            && self.added.is_empty()
    }

    fn apply(&self, fields: Vec<(FieldName, Value)>) -> Vec<(FieldName, Value)> {
        if self.is_empty() {
            return fields;
        }
        let mut out = Vec::with_capacity(fields.len());
        for (mut name, mut value) in fields {
            if let Some((_, to)) = self.rename.iter().find(|(from, _)| from == name.as_str()) {
                name = FieldName::from(to.clone());
            }
            if self
                .drop
                .iter()
                .chain(&self.added)
                .any(|d| d == name.as_str())
            {
                continue;
            }
            if self.scrub.iter().any(|d| d == name.as_str()) {
                value = Value::String(scrub(&value).into());
            }
            out.push((name, value));
        }
        out
    }
}

/// Hex SHA-256 of a value's text, as honeytail's `--scrub_field`.
fn scrub(v: &Value) -> String {
    let digest = Sha256::digest(infer::text(v).as_bytes());
    let mut s = String::with_capacity(64);
    for b in digest {
        s.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
        s.push(char::from_digit(u32::from(b & 15), 16).unwrap_or('0'));
    }
    s
}

struct Pipeline {
    parser: Parser,
    ops: FieldOps,
    builder: Builder,
    time_field: Option<String>,
    time_format: TimeFormat,
    dyn_fields: Vec<String>,
    sampler: Option<DynSampler>,
    send_unparsed: bool,
    stats: Arc<Stats>,
    unparsed_reported: u64,
}

enum Fatal {
    Config(String),
}

impl Pipeline {
    fn report_unparsed(&mut self, file: &str, line: u64, why: &str) {
        Stats::inc(&self.stats.unparsed);
        self.unparsed_reported += 1;
        if self.unparsed_reported <= MAX_REPORTS {
            error(format_args!("{file}:{line}: unparseable line: {why}"));
            if self.unparsed_reported == MAX_REPORTS {
                error("further unparseable lines are only counted");
            }
        }
    }

    /// Handles one line (line ending included in `raw`) ending at file offset `end`.
    fn line(&mut self, src: &Source, raw: &[u8], end: u64) -> Result<(), Fatal> {
        Stats::inc(&self.stats.read);
        let mut text = raw;
        while let [rest @ .., b'\n' | b'\r'] = text {
            text = rest;
        }
        if text.iter().all(u8::is_ascii_whitespace) {
            Stats::inc(&self.stats.blank);
            src.track.done(end);
            return Ok(());
        }
        let fields = match self.parser.parse(text) {
            Ok(f) => self.ops.apply(f),
            Err(why) => {
                self.report_unparsed(&src.display, src.line_no, &why);
                if !self.send_unparsed {
                    src.track.done(end);
                    return Ok(());
                }
                vec![(
                    FieldName::from_static("raw"),
                    Value::String(String::from_utf8_lossy(text).into_owned().into()),
                )]
            }
        };
        self.send(src, fields, end)
    }

    fn send(
        &mut self,
        src: &Source,
        fields: Vec<(FieldName, Value)>,
        end: u64,
    ) -> Result<(), Fatal> {
        let mut timestamp: Option<SystemTime> = None;
        if let Some(tf) = &self.time_field {
            if let Some((_, v)) = fields.iter().find(|(n, _)| n.as_str() == tf) {
                timestamp = self.time_format.parse_value(v);
                if timestamp.is_none() {
                    Stats::inc(&self.stats.bad_time);
                }
            }
        }
        let mut rate = None;
        if let Some(sampler) = &mut self.sampler {
            let mut key = String::new();
            for f in &self.dyn_fields {
                if let Some((_, v)) = fields.iter().find(|(n, _)| n.as_str() == f) {
                    key.push_str(&infer::text(v));
                }
                key.push('\u{1f}');
            }
            match sampler.sample(&key, Instant::now()) {
                Some(r) => rate = Some(r),
                None => {
                    Stats::inc(&self.stats.sampled);
                    src.track.done(end);
                    return Ok(());
                }
            }
        }
        let mut ev = self.builder.new_event();
        for (n, v) in fields {
            ev.add_field(n, v);
        }
        if ev.is_empty() {
            self.report_unparsed(&src.display, src.line_no, "no fields left");
            src.track.done(end);
            return Ok(());
        }
        if let Some(ts) = timestamp {
            ev.set_timestamp(ts);
        }
        let seq = src.track.open(end);
        ev.add_metadata(LineRef {
            track: src.track.clone(),
            seq,
            file: src.display.clone(),
            line: src.line_no,
        });
        let result = match rate {
            Some(r) => {
                ev.set_sample_rate(r);
                ev.send_presampled()
            }
            None => ev.send(),
        };
        match result {
            Ok(()) => Ok(()),
            Err(e @ SendError::TimestampOutOfRange) => {
                src.track.answered(seq);
                Stats::inc(&self.stats.failed);
                error(format_args!("{}:{}: {e}", src.display, src.line_no));
                Ok(())
            }
            Err(e) => {
                src.track.answered(seq);
                Err(Fatal::Config(send::explain(&e)))
            }
        }
    }
}

enum Input {
    File(BufReader<File>),
    Stdin(BufReader<std::io::Stdin>),
}

impl Input {
    fn reader(&mut self) -> &mut dyn BufRead {
        match self {
            Input::File(r) => r,
            Input::Stdin(r) => r,
        }
    }
}

enum Next {
    Line,
    Overlong,
    Eof,
}

struct Source {
    path: PathBuf,
    /// Absolute path: the checkpoint's key.
    key: PathBuf,
    display: Arc<str>,
    input: Option<Input>,
    id: (u64, u64),
    /// Bytes consumed from the current file (including a buffered partial line).
    pos: u64,
    line_no: u64,
    buf: Vec<u8>,
    skipping: bool,
    track: Arc<Track>,
    finished: bool,
    /// Files rotated away from this path (or being drained after a restart)
    /// whose lines are not all answered: kept in the checkpoint until they are.
    retired: Vec<((u64, u64), Arc<Track>)>,
    /// A rotated file found again after a restart: read to its end, never
    /// followed, checkpointed through the source of its path.
    drain: bool,
}

fn file_id(m: &std::fs::Metadata) -> (u64, u64) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        (m.dev(), m.ino())
    }
    #[cfg(not(unix))]
    {
        let _ = m;
        (0, 0)
    }
}

impl Source {
    fn open_file(path: &Path, at: u64) -> std::io::Result<(Input, (u64, u64), u64)> {
        let mut f = File::open(path)?;
        let m = f.metadata()?;
        let at = at.min(m.len());
        f.seek(SeekFrom::Start(at))?;
        Ok((
            Input::File(BufReader::with_capacity(READ_BUFFER_BYTES, f)),
            file_id(&m),
            at,
        ))
    }

    /// Reads the next complete line into `buf` (appending to a partial one).
    fn next(&mut self) -> std::io::Result<Next> {
        let Some(input) = self.input.as_mut() else {
            return Ok(Next::Eof);
        };
        let r = input.reader();
        loop {
            let avail = match r.fill_buf() {
                Ok(a) => a,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if avail.is_empty() {
                return Ok(Next::Eof);
            }
            match memchr::memchr(b'\n', avail) {
                Some(i) => {
                    // `i` bytes before the newline: the line's length is known now.
                    let overlong = self.skipping || self.buf.len() + i > MAX_LINE_BYTES;
                    if !overlong {
                        self.buf.extend_from_slice(&avail[..=i]);
                    }
                    r.consume(i + 1);
                    self.pos += i as u64 + 1;
                    self.line_no += 1;
                    self.skipping = false;
                    if overlong {
                        self.buf.clear();
                        return Ok(Next::Overlong);
                    }
                    return Ok(Next::Line);
                }
                None => {
                    let n = avail.len();
                    if !self.skipping {
                        self.buf.extend_from_slice(avail);
                    }
                    r.consume(n);
                    self.pos += n as u64;
                    if self.buf.len() > MAX_LINE_BYTES {
                        self.buf = Vec::new();
                        self.skipping = true;
                    }
                }
            }
        }
    }

    /// Reads up to `budget` lines; returns how many were handled.
    fn pump(&mut self, p: &mut Pipeline, budget: usize) -> Result<usize, Fatal> {
        let mut n = 0;
        while n < budget {
            match self.next() {
                Ok(Next::Line) => {
                    let line = std::mem::take(&mut self.buf);
                    p.line(self, &line, self.pos)?;
                    self.buf = line;
                    self.buf.clear();
                }
                Ok(Next::Overlong) => {
                    p.report_unparsed(&self.display, self.line_no, "line longer than 1 MiB");
                    self.track.done(self.pos);
                }
                Ok(Next::Eof) => {
                    if self.drain || matches!(self.input, Some(Input::Stdin(_))) {
                        self.finish_partial(p)?;
                        self.finished = true;
                        self.track.mark_drained();
                    }
                    break;
                }
                Err(e) => {
                    return Err(Fatal::Config(format!("cannot read {}: {e}", self.display)));
                }
            }
            n += 1;
        }
        Ok(n)
    }

    /// A last line without a newline, at the end of a file that is done.
    fn finish_partial(&mut self, p: &mut Pipeline) -> Result<(), Fatal> {
        if self.skipping {
            self.skipping = false;
            self.line_no += 1;
            p.report_unparsed(&self.display, self.line_no, "line longer than 1 MiB");
            self.track.done(self.pos);
        } else if !self.buf.is_empty() {
            self.line_no += 1;
            let line = std::mem::take(&mut self.buf);
            p.line(self, &line, self.pos)?;
        }
        Ok(())
    }

    /// At the end of the file: has the path been rotated or truncated, or has
    /// a missing file appeared?
    fn check(&mut self, p: &mut Pipeline, events: &mut Vec<String>) -> Result<(), Fatal> {
        if self.drain || matches!(self.input, Some(Input::Stdin(_))) {
            return Ok(());
        }
        let Ok(m) = std::fs::metadata(&self.path) else {
            return Ok(()); // gone for now: keep the old handle, look again later
        };
        let id = file_id(&m);
        if self.input.is_some() && id == self.id {
            if m.len() < self.pos {
                events.push(format!(
                    "{}: truncated; reading from the start",
                    self.display
                ));
                if let Some(Input::File(r)) = &mut self.input {
                    r.seek(SeekFrom::Start(0)).map_err(|e| {
                        Fatal::Config(format!("cannot rewind {}: {e}", self.display))
                    })?;
                }
                self.reset(0);
            }
            return Ok(());
        }
        if self.input.is_some() {
            // Rotated: finish the old file (lines written before the rename), then switch.
            while self.pump(p, usize::MAX)? > 0 {}
            self.finish_partial(p)?;
            events.push(format!("{}: rotated; following the new file", self.display));
            self.retired
                .retain(|(_, t)| t.open_lines() > 0 || !t.drained());
            if self.track.open_lines() > 0 {
                self.retired.push((self.id, self.track.clone()));
            }
        }
        match Source::open_file(&self.path, 0) {
            Ok((input, id, at)) => {
                self.input = Some(input);
                self.id = id;
                self.reset(at);
            }
            Err(_) => self.input = None, // raced with another rename; try next poll
        }
        Ok(())
    }

    fn reset(&mut self, at: u64) {
        self.pos = at;
        self.line_no = 0;
        self.buf.clear();
        self.skipping = false;
        self.track = Arc::new(Track::new(at));
    }
}

/// Directory entries looked at when searching for a rotated file.
const MAX_DIR_ENTRIES: usize = 10_000;

/// The file in `dir` with this device and inode, if any (rotated files keep
/// both when renamed).
fn find_by_id(dir: &Path, id: (u64, u64)) -> Option<PathBuf> {
    if id == (0, 0) {
        return None;
    }
    std::fs::read_dir(dir)
        .ok()?
        .take(MAX_DIR_ENTRIES)
        .filter_map(Result::ok)
        .find(|e| std::fs::metadata(e.path()).is_ok_and(|m| m.is_file() && file_id(&m) == id))
        .map(|e| e.path())
}

fn fail(msg: impl std::fmt::Display) -> u8 {
    error(msg);
    exit::CONFIG
}

fn save_checkpoint(path: &Path, state: &mut State, sources: &mut [Source]) {
    for s in sources {
        if s.drain || matches!(s.input, Some(Input::Stdin(_))) {
            continue;
        }
        s.retired
            .retain(|(_, t)| t.open_lines() > 0 || !t.drained());
        let rotated = s
            .retired
            .iter()
            .map(|((dev, ino), t)| Rotated {
                dev: *dev,
                ino: *ino,
                offset: t.committed(),
            })
            .collect();
        if s.input.is_some() {
            state.files.insert(
                s.key.clone(),
                Entry {
                    dev: s.id.0,
                    ino: s.id.1,
                    offset: s.track.committed(),
                    rotated,
                },
            );
        } else if let Some(e) = state.files.get_mut(&s.key) {
            e.rotated = rotated;
        }
    }
    if let Err(e) = state.save(path) {
        error(format_args!(
            "cannot write checkpoint {}: {e}",
            path.display()
        ));
    }
}

/// Runs `honey tail`; returns the exit code. Runs until the inputs end
/// (`--backfill`, stdin), a signal, or an undelivered event; then waits up to
/// 30 s for outstanding answers.
pub fn run(args: TailArgs) -> u8 {
    let started = Instant::now();
    let stdin_mode = args.files.iter().any(|f| f.as_os_str() == "-");
    if stdin_mode && args.files.len() > 1 {
        error("`-` (stdin) must be the only input");
        return exit::USAGE;
    }
    if stdin_mode && args.checkpoint.is_some() {
        error("--checkpoint does not apply to stdin");
        return exit::USAGE;
    }
    let read_from = match (args.read_from, &args.checkpoint) {
        (Some(ReadFrom::Checkpoint), None) => {
            error("--read-from checkpoint needs --checkpoint FILE");
            return exit::USAGE;
        }
        (Some(r), _) => r,
        (None, Some(_)) => ReadFrom::Checkpoint,
        (None, None) if args.backfill => ReadFrom::Start,
        (None, None) => ReadFrom::End,
    };

    // Parser, field operations, time, sampling.
    let parser = match args.parser {
        ParserKind::Json => Parser::Json(infer::Names::default()),
        ParserKind::Logfmt => Parser::Logfmt(infer::Names::default()),
        ParserKind::Regex => match Parser::regex(&args.regex) {
            Ok(p) => p,
            Err(e) => return fail(e),
        },
        ParserKind::Nginx => Parser::nginx(),
    };
    let (time_field, time_format) = match (&args.time_field, args.parser) {
        (None, ParserKind::Nginx) => (
            Some("time_local".to_owned()),
            TimeFormat::Pattern(timefmt::COMMON_LOG.to_owned()),
        ),
        (tf, ParserKind::Nginx) if args.time_format == "auto" => (
            tf.clone(),
            TimeFormat::Pattern(timefmt::COMMON_LOG.to_owned()),
        ),
        (tf, _) => match TimeFormat::from_flag(&args.time_format) {
            Ok(f) => (tf.clone(), f),
            Err(e) => {
                error(e);
                return exit::USAGE;
            }
        },
    };
    let mut rename = Vec::new();
    for r in &args.rename_field {
        match infer::split_assignment(r) {
            Ok((a, b)) if !b.is_empty() => rename.push((a.to_owned(), b.to_owned())),
            _ => {
                error(format_args!("--rename-field {r:?} is not old=new"));
                return exit::USAGE;
            }
        }
    }
    let mut added = Vec::new();
    for a in &args.add_field {
        match infer::split_assignment(a) {
            Ok((n, v)) => added.push((n.to_owned(), infer::argument(v))),
            Err(e) => {
                error(format_args!("--add-field: {e}"));
                return exit::USAGE;
            }
        }
    }
    let ops = FieldOps {
        rename,
        drop: args.drop_field.clone(),
        scrub: args.scrub_field.clone(),
        added: added.iter().map(|(n, _)| n.clone()).collect(),
    };
    let sampler = (!args.dynsample.is_empty())
        .then(|| DynSampler::new(args.target.sample_rate, args.dynsample_window));

    // Inputs.
    let mut state = match &args.checkpoint {
        Some(p) => match State::load(p) {
            Ok(s) => s,
            Err(e) => return fail(e),
        },
        None => State::default(),
    };
    let mut sources = Vec::with_capacity(args.files.len());
    for path in &args.files {
        let display: Arc<str> = Arc::from(path.display().to_string());
        if stdin_mode {
            sources.push(Source {
                path: path.clone(),
                key: path.clone(),
                display: Arc::from("<stdin>"),
                input: Some(Input::Stdin(BufReader::with_capacity(
                    READ_BUFFER_BYTES,
                    std::io::stdin(),
                ))),
                id: (0, 0),
                pos: 0,
                line_no: 0,
                buf: Vec::new(),
                skipping: false,
                track: Arc::new(Track::new(0)),
                finished: false,
                retired: Vec::new(),
                drain: false,
            });
            continue;
        }
        let key = std::path::absolute(path).unwrap_or_else(|_| path.clone());
        // Rotated files to read first (oldest first): those the checkpoint
        // lists with unanswered lines, and the checkpointed file itself if
        // the path names another file now.
        let mut rotated: Vec<Rotated> = Vec::new();
        let wanted = match read_from {
            ReadFrom::Start => 0,
            ReadFrom::End => u64::MAX,
            ReadFrom::Checkpoint => {
                let cur = std::fs::metadata(path).ok().map(|m| (file_id(&m), m.len()));
                let entry = state.files.get(&key);
                rotated = entry.map(|e| e.rotated.clone()).unwrap_or_default();
                match (entry, cur) {
                    (Some(e), Some((id, len))) if (e.dev, e.ino) == id && e.offset <= len => {
                        e.offset
                    }
                    (Some(e), Some((id, _))) => {
                        if (e.dev, e.ino) != id {
                            rotated.push(Rotated {
                                dev: e.dev,
                                ino: e.ino,
                                offset: e.offset,
                            });
                        }
                        error(format_args!(
                            "{display}: the checkpoint is for another file (rotated or truncated while stopped); reading it from the start"
                        ));
                        0
                    }
                    _ => 0,
                }
            }
        };
        let (input, id, pos) = match Source::open_file(path, wanted) {
            Ok((i, id, at)) => (Some(i), id, at),
            Err(e) if args.backfill => return fail(format_args!("cannot open {display}: {e}")),
            Err(e) => {
                error(format_args!("{display}: {e}; waiting for it to appear"));
                (None, (0, 0), 0)
            }
        };
        // Files rotated away from this path with lines still unanswered when
        // the checkpoint was written: find them again and read their rest first.
        let mut retired = Vec::new();
        for r in rotated {
            let dir = key.parent().unwrap_or(Path::new("."));
            let Some(found) = find_by_id(dir, (r.dev, r.ino)) else {
                error(format_args!(
                    "{display}: the file rotated away from it (inode {}) is no longer in {}; lines of it not yet sent are not sent",
                    r.ino,
                    dir.display()
                ));
                continue;
            };
            let Ok((input, id, at)) = Source::open_file(&found, r.offset) else {
                continue;
            };
            error(format_args!(
                "{display}: reading the rest of {} first (it was rotated away from this path)",
                found.display()
            ));
            let track = Arc::new(Track::draining(at));
            retired.push((id, track.clone()));
            sources.push(Source {
                display: Arc::from(found.display().to_string()),
                key: found.clone(),
                path: found,
                input: Some(input),
                id,
                pos: at,
                line_no: 0,
                buf: Vec::new(),
                skipping: false,
                track,
                finished: false,
                retired: Vec::new(),
                drain: true,
            });
        }
        sources.push(Source {
            path: path.clone(),
            key,
            display,
            input,
            id,
            pos,
            line_no: 0,
            buf: Vec::new(),
            skipping: false,
            track: Arc::new(Track::new(pos)),
            finished: false,
            retired,
            drain: false,
        });
    }

    // The client.
    let client = match Client::new(
        send::config(&args.target)
            .block_on_send(true)
            .block_on_response(true)
            .shutdown_timeout(SHUTDOWN_TIMEOUT),
    ) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let mut builder = client.new_builder();
    for (n, v) in added {
        builder.add_field(n, v);
    }
    let stats = Arc::new(Stats::default());
    let responses = client.responses();
    let dry_run = args.target.dry_run;
    let reader = {
        let stats = stats.clone();
        std::thread::Builder::new()
            .name("honey-responses".into())
            .spawn(move || {
                for r in responses {
                    let Some(lr) = r
                        .metadata
                        .as_ref()
                        .and_then(|m| m.downcast_ref::<LineRef>())
                    else {
                        continue;
                    };
                    match &r.error {
                        None => Stats::inc(&stats.sent),
                        Some(ResponseError::Sampled) => Stats::inc(&stats.sampled),
                        Some(e) => {
                            Stats::inc(&stats.failed);
                            let refused = send::refused_by_api(e);
                            if !refused {
                                Stats::inc(&stats.undelivered);
                            }
                            let n = stats.failures_reported.fetch_add(1, Ordering::Relaxed) + 1;
                            if n <= MAX_REPORTS {
                                error(format_args!(
                                    "{}:{}: event {}: {}",
                                    lr.file,
                                    lr.line,
                                    if refused { "refused" } else { "not delivered" },
                                    send::describe_failure(&r)
                                ));
                                if n == MAX_REPORTS {
                                    error("further failed events are only counted");
                                }
                            }
                            if !refused {
                                continue; // not answered: the checkpoint stays before it
                            }
                        }
                    }
                    lr.track.answered(lr.seq);
                }
            })
    };
    let reader = match reader {
        Ok(r) => r,
        Err(e) => return fail(format_args!("cannot start the response thread: {e}")),
    };
    let stop = match signals::install() {
        Ok(s) => s,
        Err(e) => return fail(format_args!("cannot install signal handlers: {e}")),
    };
    let progress_done = Arc::new(AtomicBool::new(false));
    let progress = if !args.quiet && (args.progress || std::io::stderr().is_terminal()) {
        let (stats, done) = (stats.clone(), progress_done.clone());
        let tty = std::io::stderr().is_terminal();
        std::thread::Builder::new()
            .name("honey-progress".into())
            .spawn(move || progress_loop(&stats, &done, tty))
            .ok()
    } else {
        None
    };

    let mut pipeline = Pipeline {
        parser,
        ops,
        builder,
        time_field,
        time_format,
        dyn_fields: args.dynsample.clone(),
        sampler,
        send_unparsed: args.send_unparsed,
        stats: stats.clone(),
        unparsed_reported: 0,
    };

    // The loop: read every file in turn; at the end of all, poll.
    let mut fatal: Option<String> = None;
    let mut fatal_undelivered = false;
    let mut last_save = Instant::now();
    let mut notices = Vec::new();
    'run: loop {
        let mut progressed = false;
        for src in &mut sources {
            if src.finished {
                continue;
            }
            match src.pump(&mut pipeline, LINES_PER_TURN) {
                Ok(n) => progressed |= n > 0,
                Err(Fatal::Config(e)) => {
                    fatal = Some(e);
                    break 'run;
                }
            }
        }
        if let Some(p) = &args.checkpoint {
            if !dry_run && last_save.elapsed() >= args.checkpoint_interval {
                save_checkpoint(p, &mut state, &mut sources);
                last_save = Instant::now();
            }
        }
        if stop.requested() {
            break;
        }
        if Stats::get(&stats.undelivered) > 0 {
            fatal_undelivered = true;
            break;
        }
        if sources.iter().all(|s| s.finished) {
            break;
        }
        if !progressed {
            if args.backfill {
                for src in &mut sources {
                    if let Err(Fatal::Config(e)) = src.finish_partial(&mut pipeline) {
                        fatal = Some(e);
                    }
                }
                break;
            }
            for src in &mut sources {
                if let Err(Fatal::Config(e)) = src.check(&mut pipeline, &mut notices) {
                    fatal = Some(e);
                    break 'run;
                }
            }
            for n in notices.drain(..) {
                if !args.quiet {
                    eprintln!("honey: {n}");
                }
            }
            std::thread::sleep(args.poll_interval);
        }
    }

    // Shut down: deliver what is queued, read every answer, save the checkpoint.
    drop(pipeline);
    let close = client.close();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !reader.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    if reader.is_finished() {
        let _ = reader.join();
    }
    progress_done.store(true, Ordering::Relaxed);
    if let Some(p) = progress {
        let _ = p.join();
    }
    if let Some(p) = &args.checkpoint {
        if !dry_run {
            save_checkpoint(p, &mut state, &mut sources);
        }
    }
    let open: usize = sources.iter().map(|s| s.track.open_lines()).sum();
    if let Err(e) = close {
        error(format_args!(
            "not every event was answered before exiting ({e}); the checkpoint stays before them"
        ));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let g = |c: &AtomicU64| Stats::get(c);
    if !args.quiet {
        let read = g(&stats.read);
        eprintln!(
            "honey: read {read} lines in {elapsed:.2} s ({:.0} lines/s): {} {}, {} failed, {} unparseable, {} sampled out, {} blank{}{}",
            read as f64 / elapsed.max(1e-9),
            g(&stats.sent),
            if dry_run { "printed" } else { "sent" },
            g(&stats.failed),
            g(&stats.unparsed),
            g(&stats.sampled),
            g(&stats.blank),
            if g(&stats.bad_time) > 0 {
                format!(", {} with an unreadable time (sent with the current time)", g(&stats.bad_time))
            } else {
                String::new()
            },
            if open > 0 { format!(", {open} unanswered") } else { String::new() },
        );
    }
    if let Some(e) = fatal {
        error(e);
        return exit::CONFIG;
    }
    if fatal_undelivered || g(&stats.undelivered) > 0 {
        error(format_args!(
            "stopped: {} events could not be delivered (see above); {}",
            g(&stats.undelivered),
            if args.checkpoint.is_some() {
                "the checkpoint stays before them, so running again sends them"
            } else {
                "without --checkpoint they are not sent again"
            }
        ));
    }
    if g(&stats.failed) > 0 || open > 0 {
        exit::NOT_DELIVERED
    } else {
        exit::OK
    }
}

fn progress_loop(stats: &Stats, done: &AtomicBool, tty: bool) {
    let start = Instant::now();
    let mut last = (Instant::now(), 0u64);
    loop {
        let step = Instant::now() + PROGRESS_INTERVAL;
        while Instant::now() < step {
            if done.load(Ordering::Relaxed) {
                if tty {
                    eprint!("\r\x1b[K");
                }
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let read = Stats::get(&stats.read);
        let now = Instant::now();
        let rate = (read - last.1) as f64 / now.duration_since(last.0).as_secs_f64().max(1e-9);
        last = (now, read);
        let line = format!(
            "honey: {:.0}s read {read} sent {} failed {} unparseable {} ({rate:.0} lines/s)",
            start.elapsed().as_secs_f64(),
            Stats::get(&stats.sent),
            Stats::get(&stats.failed),
            Stats::get(&stats.unparsed),
        );
        if tty {
            eprint!("\r\x1b[K{line}");
        } else {
            eprintln!("{line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_is_sha256_hex() {
        assert_eq!(
            scrub(&Value::String("hello".into())),
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        // Non-strings hash their JSON text, as honeytail hashes fmt's %v.
        assert_eq!(scrub(&Value::Int(42)), scrub(&Value::String("42".into())));
    }

    #[test]
    fn field_ops_order() {
        let ops = FieldOps {
            rename: vec![("msg".into(), "message".into())],
            drop: vec!["password".into()],
            scrub: vec!["email".into()],
            added: vec!["env".into()],
        };
        let out = ops.apply(vec![
            ("msg".into(), Value::String("hi".into())),
            ("password".into(), Value::String("x".into())),
            ("email".into(), Value::String("a@b".into())),
            ("env".into(), Value::String("parsed".into())),
        ]);
        let names: Vec<&str> = out.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["message", "email"]);
        assert_eq!(out[1].1.as_str().map(str::len), Some(64));
    }
}
