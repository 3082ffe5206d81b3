#!/usr/bin/env python3
"""compare.py KAFKA.jsonl OTHER.jsonl — the cases of bad_batches.py whose answers differ between two brokers.

Compares every field of each partition answer (error code, error message, log start offset, record errors, log
append time; whether a base offset was assigned), with 10+-digit numbers (timestamps) masked. Prints each
difference and a count.
"""
import json
import re
import sys


def load(path):
    out = {}
    for line in open(path):
        d = json.loads(line)
        out[(d["case"], d["produce_version"])] = d
    return out


def fields(resp):
    norm = lambda m: None if m is None else re.sub(r"-?\d{10,}", "N", m)
    d = {f: resp.get(f) for f in ("error_code", "log_start_offset", "error_message", "log_append_time_ms")}
    d["error_message"] = norm(d["error_message"])
    if isinstance(d["log_append_time_ms"], int) and d["log_append_time_ms"] > 0:
        d["log_append_time_ms"] = "N"
    d["record_errors"] = [(e["batch_index"], norm(e["batch_index_error_message"])) for e in resp.get("record_errors") or []]
    d["base_offset_assigned"] = (resp.get("base_offset") or 0) >= 0
    return d


def main():
    kafka, other = load(sys.argv[1]), load(sys.argv[2])
    same = differ = 0
    for key in sorted(kafka):
        if key not in other:
            print("missing in %s: %s" % (sys.argv[2], key))
            differ += 1
            continue
        a, b = fields(kafka[key].get("response") or {}), fields(other[key].get("response") or {})
        if a == b:
            same += 1
        else:
            differ += 1
            print("%s v%d\n  kafka %s\n  other %s" % (key[0], key[1], a, b))
    print("same %d, different %d" % (same, differ))


if __name__ == "__main__":
    main()
