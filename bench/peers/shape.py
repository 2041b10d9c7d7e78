#!/usr/bin/env python3
"""Reference implementation and checker of the bench event shape (SHAPE.md).

    python3 shape.py golden            # prints the golden events of SHAPE.md
    python3 shape.py verify < events   # checks recorded events against the formula

`verify` reads JSON from stdin: JSON lines, or one JSON array, of either the
event fields themselves or wire events ({"time":..,"samplerate":..,"data":{..}}).
Each event is found by its "count" field and compared value-for-value AND
type-for-type (int vs float vs bool) with shape(count). It also reports
duplicates and, with --expect N, which of the counts 0..N-1 are missing.
Standard library only; not part of any build or test suite.
"""
import json
import sys

METHODS = ("GET", "POST", "PUT", "DELETE")
MESSAGE = "request handled by the checkout service without any trouble."
assert len(MESSAGE) == 60
MASK64 = 0xFFFFFFFFFFFFFFFF
GOLDEN = (0, 1, 10, 500, 12345, 199999)


def shape(i):
    """Fields of event i (0-based, global across threads)."""
    if i % 100 == 0:
        status = 500
    elif i % 10 == 0:
        status = 404
    else:
        status = 200
    return {
        "service.name": "checkout",
        "endpoint": "/api/v1/cart/items",
        "method": METHODS[i % 4],
        "status_code": status,
        "duration_ms": float(i % 1000) * 0.731 + 0.5,
        "user_id": "user-%d" % (i % 10000),
        "cache_hit": i % 3 == 0,
        "message": MESSAGE,
        "trace.trace_id": "%016x%016x" % ((i * 0x9E3779B97F4A7C15) & MASK64, i),
        "count": i,
    }


def _typed(d):
    return {k: (type(v).__name__, v) for k, v in d.items()}


def _read_events(stream):
    text = stream.read().strip()
    if text.startswith("["):
        items = json.loads(text)
    else:
        items = [json.loads(line) for line in text.splitlines() if line.strip()]
    for it in items:
        yield it["data"] if isinstance(it.get("data"), dict) else it


def verify(argv):
    expect = None
    if argv[:1] == ["--expect"]:
        expect = int(argv[1])
    seen, dups, bad = set(), 0, 0
    for ev in _read_events(sys.stdin):
        c = ev.get("count")
        if not isinstance(c, int) or isinstance(c, bool):
            bad += 1
            print("event without integer count: %r" % (ev,), file=sys.stderr)
            continue
        if c in seen:
            dups += 1
        seen.add(c)
        if _typed(ev) != _typed(shape(c)):
            bad += 1
            if bad <= 5:
                print("mismatch at count=%d:\n  got  %s\n  want %s" % (
                    c, json.dumps(ev, sort_keys=True), json.dumps(shape(c), sort_keys=True)),
                    file=sys.stderr)
    missing = expect - len([c for c in seen if 0 <= c < expect]) if expect is not None else 0
    print(json.dumps({"events": len(seen) + dups, "distinct": len(seen), "duplicates": dups,
                      "mismatches": bad, "missing": missing}))
    return 0 if bad == 0 and dups == 0 and missing == 0 else 1


def main():
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "golden":
        for i in GOLDEN:
            print(json.dumps(shape(i), separators=(",", ":")))
        return 0
    if cmd == "verify":
        return verify(sys.argv[2:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
