#!/usr/bin/env python3
"""Benchmark peer: sends the shared bench event shape (see ../SHAPE.md) to a
Honeycomb-compatible receiver with libhoney-py 2.4.0 (PyPI) and prints one
JSON line with the outcome on stdout. Run it with the interpreter of the venv
that setup.sh creates (.venv/bin/python send.py --url ...).

How libhoney-py 2.4.0 is used, and why (see ../README.md for more):
- libhoney.Client(writekey, dataset, api_host, block_on_send=True,
  block_on_response=True); everything else default. block_on_send makes the
  application block instead of dropping events when the 1000-event pending
  queue is full; block_on_response makes the transmission block instead of
  silently dropping responses when the 2000-entry response queue is full, so
  that delivery can be counted exactly. (Client ignores max_batch_size and
  send_frequency anyway: the transmission always uses 100 / 0.25 s.)
- One reader thread drains client.responses() and counts per-event status 202.
  A None on that queue is not treated as the end: flush() also puts None.
- We wait until every event has a response, or until no response arrived for
  --timeout seconds, then close() the client (only if nothing is missing).
"""
import argparse
import json
import os
import queue
import resource
import sys
import threading
import time

import libhoney

SDK = "libhoney-py 2.4.0"
# The event shape, from the reference implementation beside this directory.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from shape import MESSAGE, shape as shape_fields  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser(description="libhoney-py 2.4.0 benchmark peer")
    p.add_argument("--url", required=True, help="receiver base URL, e.g. http://127.0.0.1:PORT")
    p.add_argument("--events", type=int, default=200000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--api-key", default="bench-key")
    p.add_argument("--dataset", default="bench")
    p.add_argument("--timeout", type=float, default=10.0,
                   help="give up when no response arrived for this many seconds")
    a = p.parse_args()
    if a.threads < 1 or a.events < 0 or a.timeout <= 0:
        p.error("bad --threads/--events/--timeout")
    return a


def main():
    assert len(MESSAGE) == 60
    args = parse_args()
    n, t = args.events, args.threads

    client = libhoney.Client(
        writekey=args.api_key,
        dataset=args.dataset,
        api_host=args.url,
        block_on_send=True,
        block_on_response=True,
    )
    responses = client.responses()

    tally = {"delivered": 0, "failed": 0, "last": None, "timed_out": False,
             "first_error": None, "end": None, "reasons": {}}
    started = threading.Event()

    def reader():
        started.wait()
        last_progress = time.perf_counter()
        while tally["delivered"] + tally["failed"] < n:
            try:
                r = responses.get(timeout=0.1)
            except queue.Empty:
                if time.perf_counter() - last_progress >= args.timeout:
                    tally["timed_out"] = True
                    break
                continue
            if r is None:  # put by flush()/close(); not necessarily the end
                continue
            now = time.perf_counter()
            tally["last"] = now
            last_progress = now
            if r.get("status_code") == 202 and not r.get("error"):
                tally["delivered"] += 1
            else:
                tally["failed"] += 1
                err = r.get("error")
                if err is None:
                    reason = "status: %r" % r.get("status_code")
                elif isinstance(err, str):
                    reason = "status: %r error: %s" % (r.get("status_code"), err)
                else:  # libhoney-py puts the exception object itself here
                    reason = "status: %r error: %s: %s" % (r.get("status_code"),
                                                           type(err).__name__, str(err)[:160])
                tally["reasons"][reason] = tally["reasons"].get(reason, 0) + 1
                if tally["first_error"] is None:
                    tally["first_error"] = "status=%r error=%r" % (r.get("status_code"), r.get("error"))
        tally["end"] = time.perf_counter()

    barrier = threading.Barrier(t + 1)
    send_ends = []

    def sender(lo, hi):
        barrier.wait()
        for i in range(lo, hi):
            ev = client.new_event()
            ev.add(shape_fields(i))
            ev.send()
        send_ends.append(time.perf_counter())

    rt = threading.Thread(target=reader, name="responses", daemon=True)
    rt.start()
    # Thread k sends events [k*n//t, (k+1)*n//t).
    senders = [threading.Thread(target=sender, args=(k * n // t, (k + 1) * n // t),
                                name="app-%d" % k, daemon=True) for k in range(t)]
    for s in senders:
        s.start()
    barrier.wait()
    t0 = time.perf_counter()
    started.set()

    # The reader decides when we are done (all responses, or idle timeout);
    # if the senders are stuck, the reader's idle timeout still ends the run.
    rt.join()
    for s in senders:
        s.join(timeout=0 if tally["timed_out"] else None)
    send_end = max(send_ends) if len(send_ends) == t else None

    end = tally["end"] if tally["timed_out"] or tally["last"] is None else tally["last"]
    delivered, failed = tally["delivered"], tally["failed"]
    no_response = n - delivered - failed
    if tally["first_error"]:
        print("first failed response: %s" % tally["first_error"], file=sys.stderr)
    for reason, count in sorted(tally["reasons"].items()):
        print("failed x%d: %s" % (count, reason), file=sys.stderr)

    if not tally["timed_out"]:
        client.close()  # everything already has a response: returns promptly
    else:
        print("timed out: no response for %.1fs; %d events without a response"
              % (args.timeout, no_response), file=sys.stderr)

    ru = resource.getrusage(resource.RUSAGE_SELF)
    out = {
        "sdk": SDK,
        "events": n,
        "threads": t,
        "elapsed_s": round(end - t0, 6),
        "delivered": delivered,
        "failed": failed,
        "no_response": no_response,
        "cpu_s": round(ru.ru_utime + ru.ru_stime, 6),
        "peak_rss_kb": ru.ru_maxrss,
        "send_s": round(send_end - t0, 6) if send_end is not None else None,
        "last_response_s": round(tally["last"] - t0, 6) if tally["last"] is not None else 0.0,
        "timed_out": tally["timed_out"],
    }
    sys.stdout.write(json.dumps(out, separators=(",", ":")) + "\n")
    sys.stdout.flush()
    # Do not let libhoney's atexit close() or stuck daemon threads delay exit.
    os._exit(0)


if __name__ == "__main__":
    main()
