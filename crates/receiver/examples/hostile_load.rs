//! Hostile connection load against the receiver binary (issue #14, row 7),
//! bounded in count and time, reporting the receiver's peak RSS.
//!
//! Each scenario starts a fresh `libhoney-receiver` process (default
//! bounds, `--quiet`) on a free loopback port, applies one load, and reads
//! the process's peak resident set (`VmHWM` in `/proc/PID/status`, Linux):
//!
//! * `idle`: 10,000 connections opened and left silent for 30 s;
//! * `slowloris`: 5,000 connections sending a request header one byte a
//!   second for 20 s;
//! * `partial`: 200 connections each declaring a 5,000,000-byte body and
//!   sending up to 4.9 MB of it, then stalling, for 20 s;
//! * `huge-length`: one request declaring `Content-Length: 1000000000`
//!   and sending nothing: how long until it is answered.
//!
//! ```text
//! cargo build --release -p libhoney-receiver --bins --examples
//! target/release/examples/hostile_load [--only NAME] [--scale F]
//! ```
//!
//! `--scale 0.1` divides counts and times by ten (a quick check). Needs a
//! file descriptor limit above 10,000 (`ulimit -n`). Loopback only.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Rx {
    child: Child,
    addr: SocketAddr,
}

impl Rx {
    fn start() -> Rx {
        let exe = std::env::current_exe().expect("own path");
        let bin = exe
            .parent()
            .and_then(|p| p.parent())
            .map(|p| p.join("libhoney-receiver"))
            .expect("target dir");
        let mut child = Command::new(&bin)
            .args(["--listen", "127.0.0.1:0", "--quiet"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {}: {e} (build it with --bins)", bin.display())
            });
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .rsplit("http://")
            .next()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        Rx { child, addr }
    }

    fn status(&self, field: &str) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        s.lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    fn report(&mut self, name: &str, note: &str) {
        let peak = self.status("VmHWM:") / 1024;
        let now = self.status("VmRSS:") / 1024;
        println!("{name:12} peak RSS {peak:4} MB, now {now:4} MB; {note}");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether the server closed `s` (EOF or reset), without blocking.
fn closed(s: &mut TcpStream) -> bool {
    let _ = s.set_nonblocking(true);
    let mut b = [0u8; 256];
    let r = match s.read(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    };
    let _ = s.set_nonblocking(false);
    r
}

fn open(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n)
        .filter_map(|_| TcpStream::connect(addr).ok())
        .collect()
}

fn idle(scale: f64) {
    let mut rx = Rx::start();
    let n = (10_000.0 * scale) as usize;
    let mut conns = open(rx.addr, n);
    std::thread::sleep(Duration::from_secs_f64(30.0 * scale));
    let shut = conns.iter_mut().map(closed).filter(|&c| c).count();
    rx.report(
        "idle",
        &format!(
            "{} connections opened, {shut} closed by the server",
            conns.len()
        ),
    );
}

fn slowloris(scale: f64) {
    let mut rx = Rx::start();
    let n = (5_000.0 * scale) as usize;
    let mut conns = open(rx.addr, n);
    for s in &mut conns {
        let _ = s.write_all(b"POST /1/batch/ds HTTP/1.1\r\nHost: h\r\n");
    }
    let end = Instant::now() + Duration::from_secs_f64(20.0 * scale);
    while Instant::now() < end {
        for s in &mut conns {
            let _ = s.write_all(b"X");
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    let shut = conns.iter_mut().map(closed).filter(|&c| c).count();
    rx.report(
        "slowloris",
        &format!("{} connections, {shut} closed by the server", conns.len()),
    );
}

fn partial(scale: f64) {
    let mut rx = Rx::start();
    let n = ((200.0 * scale) as usize).max(1);
    let mut conns = open(rx.addr, n);
    let chunk = vec![b' '; 64 * 1024];
    let mut sent = vec![0usize; conns.len()];
    for s in &mut conns {
        let _ = s.write_all(
            b"POST /1/batch/ds HTTP/1.1\r\nHost: h\r\nX-Honeycomb-Team: k\r\nContent-Length: 5000000\r\n\r\n",
        );
        let _ = s.set_nonblocking(true);
    }
    let end = Instant::now() + Duration::from_secs_f64(20.0 * scale);
    while Instant::now() < end {
        for (s, sent) in conns.iter_mut().zip(&mut sent) {
            while *sent < 4_900_000 {
                let want = chunk.len().min(4_900_000 - *sent);
                match s.write(&chunk[..want]) {
                    Ok(k) if k > 0 => *sent += k,
                    _ => break,
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let total: usize = sent.iter().sum();
    let mut answered = 0;
    for s in &mut conns {
        let _ = s.set_nonblocking(false);
        let _ = s.set_read_timeout(Some(Duration::from_millis(50)));
        let mut b = [0u8; 12];
        if s.read(&mut b).is_ok_and(|k| k > 0) {
            answered += 1;
        }
    }
    rx.report(
        "partial",
        &format!(
            "{} connections, {} MB of bodies accepted by the kernel, {answered} answered (408)",
            conns.len(),
            total >> 20
        ),
    );
}

fn huge_length() {
    let mut rx = Rx::start();
    let mut s = TcpStream::connect(rx.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let t = Instant::now();
    s.write_all(b"POST /1/batch/ds HTTP/1.1\r\nHost: h\r\nX-Honeycomb-Team: k\r\nContent-Length: 1000000000\r\n\r\n")
        .unwrap();
    let mut b = [0u8; 12];
    let note = match s.read(&mut b) {
        Ok(k) if k > 0 => format!(
            "answered {:?} after {:?}",
            String::from_utf8_lossy(&b[..k]),
            t.elapsed()
        ),
        other => format!("no answer after {:?}: {other:?}", t.elapsed()),
    };
    rx.report("huge-length", &note);
}

fn main() {
    let mut only = None;
    let mut scale = 1.0;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--only" => only = args.next(),
            "--scale" => scale = args.next().and_then(|s| s.parse().ok()).unwrap_or(1.0),
            other => panic!("unknown argument {other}"),
        }
    }
    let run = |name: &str| only.as_deref().is_none_or(|o| name.contains(o));
    if run("idle") {
        idle(scale);
    }
    if run("slowloris") {
        slowloris(scale);
    }
    if run("partial") {
        partial(scale);
    }
    if run("huge-length") {
        huge_length();
    }
}
