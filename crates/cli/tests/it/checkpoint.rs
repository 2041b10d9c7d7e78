//! Checkpoints: resume after a clean stop and after SIGKILL, with no line lost
//! and duplicates only among lines past the last checkpoint write.
use crate::common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use libhoney_receiver::{Fault, RunningReceiver};
use std::path::Path;
use std::process::Output;

const T: Duration = Duration::from_secs(60);

fn checkpoint_offset(path: &std::path::Path) -> Option<u64> {
    let data = std::fs::read(path).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&data).ok()?;
    v["files"].as_object()?.values().next()?["offset"].as_u64()
}

/// Byte offset just past each line, for lines made by `seq_lines(0..n)`.
fn line_ends(n: u64) -> Vec<u64> {
    let mut ends = Vec::with_capacity(n as usize);
    let mut pos = 0;
    for i in 0..n {
        pos += format!("{{\"seq\":{i}}}\n").len() as u64;
        ends.push(pos);
    }
    ends
}

#[test]
fn sigkill_mid_file_then_restart_loses_nothing() {
    const N: u64 = 40_000;
    let rx = receiver();
    let dir = tempdir("kill9");
    let log = dir.join("big.log");
    let ckpt = dir.join("ckpt.json");
    std::fs::write(&log, seq_lines(0..N)).unwrap();
    // Slow answers keep many lines in flight when the kill comes.
    rx.push_fault(Fault::Delay(Duration::from_millis(400)), 100_000);

    let mut c = honey_to(&rx, "tail", "k");
    c.args([
        "--backfill",
        "--quiet",
        "--checkpoint-interval",
        "20ms",
        "--checkpoint",
    ])
    .arg(&ckpt)
    .arg(&log)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = spawn(c);
    let deadline = Instant::now() + Duration::from_secs(20);
    // Kill once the receiver has accepted some lines but not half of them:
    // then some lines are certainly unanswered, whatever order the batches
    // were answered in (a checkpoint can only cover answered lines).
    loop {
        let accepted = rx.events().len() as u64;
        if (500..N / 2).contains(&accepted) && checkpoint_offset(&ckpt).is_some() {
            break;
        }
        assert!(
            accepted < N / 2,
            "the receiver got half the file before the kill"
        );
        assert!(Instant::now() < deadline, "no progress");
        assert!(
            child.child().try_wait().unwrap().is_none(),
            "finished before the kill"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.child().kill().unwrap(); // SIGKILL
    let _ = child.child().wait();
    let committed = checkpoint_offset(&ckpt).unwrap();
    let ends = line_ends(N);
    assert!(
        committed < *ends.last().unwrap(),
        "killed too late to test anything"
    );
    // The checkpoint sits on a line boundary: `before` lines are behind it.
    let before = if committed == 0 {
        0
    } else {
        ends.iter()
            .position(|&e| e == committed)
            .expect("offset at a line end") as u64
            + 1
    };
    // Let answers to requests already made land, then look at what arrived.
    rx.clear_faults();
    std::thread::sleep(Duration::from_millis(300));
    let first = seq_counts(&rx);
    for s in 0..before {
        assert_eq!(
            first.get(&s),
            Some(&1),
            "line {s} is behind the checkpoint but was not received once"
        );
    }
    // Lines of the first run past the checkpoint: those in flight (or answered
    // after the last write). These, and only these, can come twice.
    let in_flight: Vec<u64> = first.keys().copied().filter(|&s| s >= before).collect();

    rx.reset();
    let mut c = honey_to(&rx, "tail", "k");
    c.args(["--backfill", "--checkpoint"]).arg(&ckpt).arg(&log);
    let out = run(c, T);
    assert_success(&out);
    let second = seq_counts(&rx);
    // The restart resumes exactly at the checkpoint and sends the rest once.
    assert_eq!(second.len() as u64, N - before, "{}", stderr(&out));
    assert_eq!(second.keys().next().copied(), Some(before));
    assert!(second.values().all(|&n| n == 1));

    // Every line at least once overall; duplicates only among the in-flight ones.
    let mut dups = 0;
    for s in 0..N {
        let n = first.get(&s).unwrap_or(&0) + second.get(&s).unwrap_or(&0);
        assert!(n >= 1, "line {s} lost");
        if n > 1 {
            assert!(
                in_flight.contains(&s),
                "line {s} duplicated but was behind the checkpoint"
            );
            dups += n - 1;
        }
    }
    assert!(
        dups <= in_flight.len(),
        "{dups} duplicates, {} in flight",
        in_flight.len()
    );
    eprintln!(
        "killed with checkpoint at line {before}; {} in flight; {dups} duplicates",
        in_flight.len()
    );
    assert_eq!(checkpoint_offset(&ckpt), Some(*ends.last().unwrap()));
}

/// `honey tail --backfill --checkpoint ckpt log` to dataset `r`, run to its end.
fn tail_checkpointed(rx: &RunningReceiver, ckpt: &Path, log: &Path) -> Output {
    let mut c = honey_to(rx, "tail", "r");
    c.args(["--backfill", "--checkpoint"]).arg(ckpt).arg(log);
    run(c, T)
}

#[test]
fn clean_restart_resumes_without_duplicates() {
    let rx = receiver();
    let dir = tempdir("resume");
    let log = dir.join("a.log");
    let ckpt = dir.join("ckpt.json");
    std::fs::write(&log, seq_lines(0..100)).unwrap();
    let tail = |rx: &RunningReceiver| tail_checkpointed(rx, &ckpt, &log);
    let out = tail(&rx);
    assert_success(&out);
    append(&log, &seq_lines(100..150));
    let out = tail(&rx);
    assert_success(&out);
    assert!(stderr(&out).contains("read 50 lines"), "{}", stderr(&out));
    let counts = seq_counts(&rx);
    assert_eq!(counts.len(), 150);
    assert!(counts.values().all(|&n| n == 1));

    // Nothing new: nothing sent.
    rx.reset();
    let out = tail(&rx);
    assert_success(&out);
    assert_eq!(rx.stats().requests, 0);

    // The file was replaced while honey was stopped: start it from the beginning.
    std::fs::remove_file(&log).unwrap();
    std::fs::write(&log, seq_lines(1000..1003)).unwrap();
    let out = tail(&rx);
    assert_success(&out);
    assert!(
        stderr(&out).contains("checkpoint is for another file"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        seq_counts(&rx).keys().copied().collect::<Vec<_>>(),
        [1000, 1001, 1002]
    );

    // --read-from end ignores the checkpoint and sends nothing that exists.
    rx.reset();
    let mut c = honey_to(&rx, "tail", "r");
    c.args(["--backfill", "--read-from", "end", "--checkpoint"])
        .arg(&ckpt)
        .arg(&log);
    let out = run(c, T);
    assert_success(&out);
    assert_eq!(rx.stats().requests, 0);

    // A corrupt checkpoint is a configuration error, not a silent restart.
    std::fs::write(&ckpt, "{").unwrap();
    let out = tail(&rx);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("not a honey checkpoint"));
}

#[test]
fn rotated_while_stopped_the_old_file_is_finished_first() {
    let rx = receiver();
    let dir = tempdir("rot-stopped");
    let log = dir.join("a.log");
    let ckpt = dir.join("ckpt.json");
    std::fs::write(&log, seq_lines(0..100)).unwrap();
    let tail = |rx: &RunningReceiver| tail_checkpointed(rx, &ckpt, &log);
    assert_success(&tail(&rx));
    // While honey is stopped: more lines, then a rotation and a new file.
    append(&log, &seq_lines(100..120));
    std::fs::rename(&log, dir.join("a.log.1")).unwrap();
    std::fs::write(&log, seq_lines(120..130)).unwrap();
    rx.reset();
    let out = tail(&rx);
    assert_success(&out);
    assert!(
        stderr(&out).contains("reading the rest of"),
        "{}",
        stderr(&out)
    );
    let counts = seq_counts(&rx);
    assert_eq!(
        counts.keys().copied().collect::<Vec<_>>(),
        (100..130).collect::<Vec<_>>()
    );
    assert!(counts.values().all(|&n| n == 1));
    // Done with the old file: it leaves the checkpoint, nothing is sent again.
    rx.reset();
    let out = tail(&rx);
    assert_success(&out);
    assert_eq!(rx.stats().requests, 0, "{}", stderr(&out));
    assert!(!std::fs::read_to_string(&ckpt).unwrap().contains("rotated"));
}

#[test]
fn sigkill_just_after_a_rotation_loses_nothing() {
    let rx = receiver();
    let dir = tempdir("rot-kill");
    let log = dir.join("a.log");
    let ckpt = dir.join("ckpt.json");
    std::fs::write(&log, "").unwrap();
    // Slow answers: the old file's lines are still in flight at the kill.
    rx.push_fault(Fault::Delay(Duration::from_millis(700)), 1_000);
    let mut c = honey_to(&rx, "tail", "rk");
    c.args([
        "--read-from",
        "start",
        "--poll-interval",
        "20ms",
        "--checkpoint-interval",
        "20ms",
    ])
    .arg("--checkpoint")
    .arg(&ckpt)
    .arg(&log)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = spawn(c);
    append(&log, &seq_lines(0..100));
    std::thread::sleep(Duration::from_millis(200)); // read and sent, not answered
    std::fs::rename(&log, dir.join("a.log.1")).unwrap();
    append(&log, &seq_lines(100..150));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&ckpt)
        .unwrap_or_default()
        .contains("rotated")
    {
        assert!(
            Instant::now() < deadline,
            "the rotation never reached the checkpoint"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.child().kill().unwrap(); // SIGKILL
    let _ = child.child().wait();
    rx.clear_faults();
    std::thread::sleep(Duration::from_millis(900)); // delayed answers land
    let first = seq_counts(&rx);

    let mut c = honey_to(&rx, "tail", "rk");
    c.args(["--backfill", "--checkpoint"]).arg(&ckpt).arg(&log);
    let out = run(c, T);
    assert_success(&out);
    assert!(
        stderr(&out).contains("reading the rest of"),
        "{}",
        stderr(&out)
    );
    let all = seq_counts(&rx);
    for s in 0..150 {
        assert!(
            all.contains_key(&s),
            "line {s} lost (first run had {} lines)",
            first.len()
        );
    }
}
