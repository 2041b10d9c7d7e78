//! `honey tail` end to end against the receiver.
use crate::common;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use libhoney_receiver::Fault;
use serde_json::json;

const T: Duration = Duration::from_secs(30);

#[test]
fn follows_appends_rotation_truncation_and_partial_lines() {
    let rx = receiver();
    let dir = tempdir("follow");
    let log = dir.join("app.log");
    append(&log, &seq_lines(0..10));
    let mut c = honey_to(&rx, "tail", "follow");
    c.args(["--read-from", "start", "--poll-interval", "20ms", "--quiet"])
        .arg(&log)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = spawn(c);

    expect_events(&rx, 10, "initial lines");
    append(&log, &seq_lines(10..20));
    expect_events(&rx, 20, "appended lines");

    // Rotation: lines written to the old file just before the rename are
    // still read, then the new file is followed from its start.
    append(&log, &seq_lines(20..25));
    std::fs::rename(&log, dir.join("app.log.1")).unwrap();
    append(&log, &seq_lines(25..35));
    expect_events(&rx, 35, "after rotation");

    // Truncation (copytruncate): the file shrinks; reading restarts at 0.
    std::fs::write(&log, "").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    append(&log, &seq_lines(35..38));
    expect_events(&rx, 38, "after truncation");

    // A line written in two parts is one event, sent once it is complete.
    append(&log, "{\"seq\":");
    std::thread::sleep(Duration::from_millis(100));
    append(&log, "38}\n");
    expect_events(&rx, 39, "partial line");

    sigterm(&mut child);
    let out = child.finish(T);
    assert_success(&out);
    let counts = seq_counts(&rx);
    assert_eq!(counts.len(), 39, "{counts:?}");
    assert!(counts.iter().all(|(s, n)| *s < 39 && *n == 1), "{counts:?}");
}

#[test]
fn malformed_lines_are_counted_never_fatal() {
    let rx = receiver();
    let dir = tempdir("malformed");
    let log = dir.join("mixed.log");
    let mut text = String::new();
    for i in 0..20u64 {
        if i % 5 == 0 {
            text.push_str("this is not json\n");
        } else {
            text.push_str(&format!("{{\"seq\":{i}}}\n"));
        }
    }
    text.push_str("\n   \n[1,2]\n{\"seq\":100}"); // blanks, a non-object, a last line without newline
    std::fs::write(&log, &text).unwrap();

    let mut c = honey_to(&rx, "tail", "bad");
    c.arg("--backfill").arg(&log);
    let out = run(c, T);
    assert_success(&out);
    let err = stderr(&out);
    assert!(err.contains("5 unparseable"), "{err}");
    assert!(err.contains("2 blank"), "{err}");
    assert!(err.contains("17 sent"), "{err}");
    assert!(err.contains("mixed.log:1: unparseable line"), "{err}");
    assert_eq!(rx.events().len(), 17);
    assert!(seq_counts(&rx).contains_key(&100));

    // With --send-unparsed they go as `raw`.
    rx.reset();
    let mut c = honey_to(&rx, "tail", "bad");
    c.args(["--backfill", "--send-unparsed"]).arg(&log);
    let out = run(c, T);
    assert_success(&out);
    let raws: Vec<_> = rx
        .events()
        .into_iter()
        .filter_map(|e| e.data.get("raw").cloned())
        .collect();
    assert_eq!(raws.len(), 5);
    assert!(raws.contains(&json!("this is not json")));
    assert!(raws.contains(&json!("[1,2]")));
}

#[test]
fn nginx_preset_with_field_operations() {
    let rx = receiver();
    let dir = tempdir("nginx");
    let log = dir.join("access.log");
    std::fs::write(
        &log,
        concat!(
            "192.168.1.7 - alice [10/Oct/2000:13:55:36 -0700] \"GET /a?q=1 HTTP/1.1\" 200 2326 \"http://ref/\" \"curl/8\"\n",
            "10.0.0.2 - - [10/Oct/2000:13:55:37 -0700] \"POST /b HTTP/2.0\" 503 0 \"-\" \"Mozilla/5.0 (X11; Linux)\"\n",
        ),
    )
    .unwrap();
    let mut c = honey_to(&rx, "tail", "nginx");
    c.args([
        "--backfill",
        "--parser",
        "nginx",
        "--scrub-field",
        "remote_addr",
        "--drop-field",
        "http_referer",
        "--rename-field",
        "request_path=path",
        "--add-field",
        "env=prod",
        "--add-field",
        "status=overridden",
    ])
    .arg(&log);
    let out = run(c, T);
    assert_success(&out);
    let mut evs = rx.events();
    evs.sort_by_key(|e| e.time.clone());
    assert_eq!(evs.len(), 2);
    let d = &evs[0].data;
    // sha256("192.168.1.7")
    assert_eq!(
        d["remote_addr"],
        json!("4247288eb95429c63952ad783e29ee35b52aad227ac16d87f3e24d943398d479")
    );
    assert!(d.get("http_referer").is_none());
    assert_eq!(d["path"], json!("/a?q=1"));
    assert!(d.get("request_path").is_none());
    assert_eq!(d["request_method"], json!("GET"));
    assert_eq!(d["body_bytes_sent"], json!(2326));
    assert_eq!(d["env"], json!("prod"));
    assert_eq!(d["status"], json!("overridden"));
    assert_eq!(d["http_user_agent"], json!("curl/8"));
    // The event time is the log's own time_local, in UTC.
    assert!(
        evs[0]
            .time
            .as_deref()
            .unwrap()
            .starts_with("2000-10-10T20:55:36"),
        "{:?}",
        evs[0].time
    );
    assert!(
        evs[1]
            .time
            .as_deref()
            .unwrap()
            .starts_with("2000-10-10T20:55:37"),
        "{:?}",
        evs[1].time
    );
}

#[test]
fn scrub_matches_sha256_of_the_value() {
    let rx = receiver();
    let dir = tempdir("scrub");
    let log = dir.join("s.log");
    std::fs::write(&log, "{\"email\":\"hello\",\"n\":1}\n").unwrap();
    let mut c = honey_to(&rx, "tail", "scrub");
    c.args(["--backfill", "--scrub-field", "email"]).arg(&log);
    let out = run(c, T);
    assert_success(&out);
    assert_eq!(
        rx.events()[0].data["email"],
        json!("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
    );
}

#[test]
fn logfmt_regex_and_time_field() {
    let rx = receiver();
    let dir = tempdir("logfmt");
    let log = dir.join("l.log");
    std::fs::write(
        &log,
        "ts=2026-12-07T10:00:00Z level=info msg=\"hello there\" n=3\nts=1700000000 level=warn\n",
    )
    .unwrap();
    let mut c = honey_to(&rx, "tail", "lf");
    c.args(["--backfill", "--parser", "logfmt", "--time-field", "ts"])
        .arg(&log);
    let out = run(c, T);
    assert_success(&out);
    let mut evs = rx.events();
    evs.sort_by_key(|e| e.time.clone());
    assert!(evs[0]
        .time
        .as_deref()
        .unwrap()
        .starts_with("2023-11-14T22:13:20"));
    assert!(evs[1]
        .time
        .as_deref()
        .unwrap()
        .starts_with("2026-12-07T10:00:00"));
    assert_eq!(evs[1].data["msg"], json!("hello there"));
    assert_eq!(evs[1].data["n"], json!(3));

    rx.reset();
    let mut c = honey_to(&rx, "tail", "re");
    c.args([
        "--backfill",
        "--parser",
        "regex",
        "--regex",
        r"^(?P<level>[A-Z]+) (?P<ms>\d+)ms (?P<msg>.*)$",
        "--time-field",
        "when",
    ])
    .arg(&log);
    let out = run(c, T);
    // Neither line matches: both counted, nothing sent, still exit 0.
    assert_success(&out);
    assert!(stderr(&out).contains("2 unparseable"), "{}", stderr(&out));
    std::fs::write(&log, "WARN 12ms disk nearly full\n").unwrap();
    let mut c = honey_to(&rx, "tail", "re");
    c.args([
        "--backfill",
        "--parser",
        "regex",
        "--regex",
        r"^(?P<level>[A-Z]+) (?P<ms>\d+)ms (?P<msg>.*)$",
    ])
    .arg(&log);
    let out = run(c, T);
    assert_success(&out);
    let d = &rx.events()[0].data;
    assert_eq!(d["level"], json!("WARN"));
    assert_eq!(d["ms"], json!(12));
    assert_eq!(d["msg"], json!("disk nearly full"));

    // A bad regex is a configuration error.
    let mut c = honey_to(&rx, "tail", "re");
    c.args(["--backfill", "--parser", "regex", "--regex", "(unclosed"])
        .arg(&log);
    assert_eq!(run(c, T).status.code(), Some(3));
}

#[test]
fn stdin_and_dry_run() {
    let rx = receiver();
    let mut c = honey_to(&rx, "tail", "stdin");
    c.args(["--dry-run", "--add-field", "src=pipe", "-"]);
    let out = run_with_input(c, seq_lines(0..3).as_bytes(), T);
    assert_success(&out);
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[2]["data"], json!({"seq": 2, "src": "pipe"}));
    assert_eq!(lines[0]["dataset"], json!("stdin"));
    assert_eq!(rx.stats().requests, 0, "a dry run sends nothing");

    // Really sending from stdin.
    let mut c = honey_to(&rx, "tail", "stdin");
    c.arg("-");
    let out = run_with_input(c, seq_lines(0..50).as_bytes(), T);
    assert_success(&out);
    assert_eq!(seq_counts(&rx).len(), 50);
}

#[test]
fn sampling_fixed_and_dynamic() {
    let rx = receiver();
    let dir = tempdir("sampling");
    let log = dir.join("s.log");
    std::fs::write(&log, seq_lines(0..2000)).unwrap();
    let mut c = honey_to(&rx, "tail", "fixed");
    c.args(["--backfill", "--sample-rate", "10"]).arg(&log);
    let out = run(c, T);
    assert_success(&out);
    let evs = rx.events();
    assert!(
        (100..=320).contains(&evs.len()),
        "{} kept of 2000 at 1/10",
        evs.len()
    );
    assert!(evs.iter().all(|e| e.samplerate == Some(10)));
    assert!(
        stderr(&out).contains(&format!("{} sampled out", 2000 - evs.len())),
        "{}",
        stderr(&out)
    );

    // Dynamic: once a window has been counted, a rare key is kept far more
    // often than the goal rate and a common one far less.
    rx.reset();
    let lines = |r: std::ops::Range<u64>| -> String {
        r.map(|i| {
            let status = if i % 100 == 0 { 500 } else { 200 };
            format!("{{\"seq\":{i},\"status\":{status}}}\n")
        })
        .collect()
    };
    std::fs::write(&log, lines(0..2000)).unwrap();
    let mut c = honey_to(&rx, "tail", "dyn");
    c.args(["--read-from", "start", "--poll-interval", "20ms", "--quiet"])
        .args([
            "--sample-rate",
            "10",
            "--dynsample",
            "status",
            "--dynsample-window",
            "200ms",
        ])
        .arg(&log)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = spawn(c);
    std::thread::sleep(Duration::from_millis(500)); // the first window ends
    append(&log, &lines(10_000..14_000));
    std::thread::sleep(Duration::from_millis(500));
    sigterm(&mut child);
    let out = child.finish(T);
    assert_success(&out);
    let evs: Vec<_> = rx
        .events()
        .into_iter()
        .filter(|e| e.data["seq"].as_u64().unwrap() >= 10_000)
        .collect();
    let errors = evs
        .iter()
        .filter(|e| e.data["status"] == json!(500))
        .count();
    let oks = evs
        .iter()
        .filter(|e| e.data["status"] == json!(200))
        .count();
    assert!(errors >= 30, "rare key kept {errors} of 40");
    assert!((100..1000).contains(&oks), "common key kept {oks} of 3960");
    for e in &evs {
        let rate = e.samplerate.unwrap_or(1);
        if e.data["status"] == json!(200) {
            assert!(rate > 1, "{e:?}");
        }
    }
}

#[test]
fn refused_lines_fail_and_still_advance_the_checkpoint() {
    let rx = receiver();
    let dir = tempdir("refused");
    let log = dir.join("r.log");
    let ckpt = dir.join("ckpt.json");
    std::fs::write(&log, seq_lines(0..5)).unwrap();
    rx.push_fault(
        Fault::EventStatus {
            index: 0,
            status: 400,
            error: "Event has too many columns.".into(),
        },
        1,
    );
    let mut c = honey_to(&rx, "tail", "r");
    c.args(["--backfill", "--checkpoint"]).arg(&ckpt).arg(&log);
    let out = run(c, T);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("1 failed") && err.contains("Event has too many columns."),
        "{err}"
    );
    let state: serde_json::Value = serde_json::from_slice(&std::fs::read(&ckpt).unwrap()).unwrap();
    let entry = state["files"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap()
        .clone();
    assert_eq!(
        entry["offset"],
        json!(std::fs::metadata(&log).unwrap().len())
    );
    assert_eq!(rx.events().len(), 4);
}

#[test]
fn undelivered_lines_stop_the_tail_and_hold_the_checkpoint() {
    let rx = receiver();
    let dir = tempdir("undelivered");
    let log = dir.join("u.log");
    let ckpt = dir.join("ckpt.json");
    std::fs::write(&log, seq_lines(0..20)).unwrap();
    // A wrong key: every request is refused with 401. Nothing was delivered,
    // so nothing may be checkpointed.
    let mut c = honey();
    c.args([
        "tail",
        "--api-host",
        &rx.api_host(),
        "-k",
        "wrong-key",
        "-d",
        "u",
        "--backfill",
    ])
    .arg("--checkpoint")
    .arg(&ckpt)
    .arg(&log);
    let out = run(c, T);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("not delivered") && err.contains("unknown API key"),
        "{err}"
    );
    assert!(err.contains("the checkpoint stays before them"), "{err}");
    assert!(
        !err.contains("wrong-key"),
        "the key must not be printed: {err}"
    );
    let state: serde_json::Value = serde_json::from_slice(&std::fs::read(&ckpt).unwrap()).unwrap();
    let entry = state["files"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap()
        .clone();
    assert_eq!(entry["offset"], json!(0));

    // With the right key, the same command sends all 20 lines.
    let mut c = honey_to(&rx, "tail", "u");
    c.args(["--backfill", "--checkpoint"]).arg(&ckpt).arg(&log);
    let out = run(c, T);
    assert_success(&out);
    assert_eq!(seq_counts(&rx).len(), 20);
}

#[test]
fn progress_line_and_missing_files() {
    let rx = receiver();
    let dir = tempdir("progress");
    let log = dir.join("p.log");
    std::fs::write(&log, seq_lines(0..5)).unwrap();
    let mut c = honey_to(&rx, "tail", "p");
    c.args(["--read-from", "start", "--progress"])
        .arg(&log)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = spawn(c);
    expect_events(&rx, 5, "progress run");
    std::thread::sleep(Duration::from_millis(1300)); // one progress interval
    sigterm(&mut child);
    let out = child.finish(T);
    assert_success(&out);
    let err = stderr(&out);
    // Not a terminal: progress lines are plain lines.
    assert!(
        err.lines().any(|l| l.contains("read 5 sent 5 failed 0")),
        "{err}"
    );
    assert!(
        err.contains("honey: read 5 lines"),
        "summary missing: {err}"
    );

    // A missing file is an error for a backfill, waited for when following.
    let mut c = honey_to(&rx, "tail", "p");
    c.arg("--backfill").arg(dir.join("nope.log"));
    let out = run(c, T);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("cannot open"), "{}", stderr(&out));

    rx.reset();
    let later = dir.join("later.log");
    let mut c = honey_to(&rx, "tail", "p");
    c.args(["--poll-interval", "20ms", "--quiet"])
        .arg(&later)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = spawn(c);
    std::thread::sleep(Duration::from_millis(200));
    append(&later, &seq_lines(0..3));
    expect_events(&rx, 3, "a file that appeared later is read from its start");
    sigterm(&mut child);
    let out = child.finish(T);
    assert_success(&out);
    assert!(
        stderr(&out).contains("waiting for it to appear"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn overlong_lines_are_skipped_and_counted() {
    let rx = receiver();
    let dir = tempdir("overlong");
    let log = dir.join("o.log");
    let mut text = seq_lines(0..2);
    text.push_str(&format!("{{\"big\":\"{}\"}}\n", "x".repeat(1_100_000)));
    text.push_str(&seq_lines(2..4));
    std::fs::write(&log, text).unwrap();
    let mut c = honey_to(&rx, "tail", "o");
    c.arg("--backfill").arg(&log);
    let out = run(c, T);
    assert_success(&out);
    let err = stderr(&out);
    assert!(
        err.contains("o.log:3: unparseable line: line longer than 1 MiB"),
        "{err}"
    );
    assert!(
        err.contains("1 unparseable") && err.contains("4 sent"),
        "{err}"
    );
    assert_eq!(
        seq_counts(&rx).keys().copied().collect::<Vec<_>>(),
        [0, 1, 2, 3]
    );
}
