"""Shared harness for the Python-based client drivers of the compatibility suite.

A driver is a program run as

    <driver> --bootstrap 127.0.0.1:P --run-id ID --scenarios a,b,c [--call-timeout 30] [--scenario-timeout 120]

that prints, for each requested scenario, exactly one line

    RESULT <scenario> PASS
    RESULT <scenario> FAIL <one-line reason>

Anything else it prints is diagnostics (kept in the run's log directory). compat-tests/run treats a scenario
without a RESULT line (crash, hang) as FAIL.

Python drivers register scenario functions with @scenario("name"); each gets a Ctx and fails by raising
(``check`` raises AssertionError with a readable message).
"""

import argparse
import sys
import threading
import time
import traceback

_SCENARIOS = {}


def scenario(name):
    def deco(fn):
        _SCENARIOS[name] = fn
        return fn
    return deco


class Ctx:
    def __init__(self, args, scenario_name, client):
        self.bootstrap = args.bootstrap
        self.host, port = args.bootstrap.rsplit(":", 1)
        self.port = int(port)
        self.run_id = args.run_id
        self.call_timeout = args.call_timeout
        self.scenario = scenario_name
        self.client = client

    def topic(self, suffix=""):
        """A topic name unique to this run, client and scenario."""
        base = "%s-%s-%s" % (self.scenario, self.client, self.run_id)
        return base + ("-" + suffix if suffix else "")

    def log(self, *a):
        print("[%s %s]" % (self.client, self.scenario), *a, flush=True)


def check(cond, msg, *fmt):
    if not cond:
        raise AssertionError(msg % fmt if fmt else msg)


def check_eq(actual, expected, what):
    if actual != expected:
        raise AssertionError("%s: expected %r, got %r" % (what, expected, actual))


def eventually(fn, timeout=30.0, interval=0.2, what="condition"):
    """Polls fn() until it returns a truthy value (returned) or timeout (AssertionError with last state)."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            v = fn()
            if v:
                return v
            last = v
        except AssertionError as e:
            last = e
        if time.monotonic() > deadline:
            raise AssertionError("%s not reached within %.0fs (last: %s)" % (what, timeout, last))
        time.sleep(interval)


def expect_error(fn, matches, what):
    """Runs fn, which must raise; matches(exc) -> bool decides whether it is the expected error.
    Returns the exception. Raises AssertionError otherwise."""
    try:
        r = fn()
    except AssertionError:
        raise
    except Exception as e:  # noqa: BLE001 - any client exception is data here
        if not matches(e):
            raise AssertionError("%s: unexpected error %s: %s" % (what, type(e).__name__, e))
        return e
    raise AssertionError("%s: expected an error, got success (%r)" % (what, r))


def one_line(s):
    s = " ".join(str(s).split())
    return s if len(s) < 600 else s[:600] + "..."


def main(client):
    p = argparse.ArgumentParser()
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--run-id", required=True)
    p.add_argument("--scenarios", required=True)
    p.add_argument("--call-timeout", type=float, default=30.0)
    p.add_argument("--scenario-timeout", type=float, default=120.0)
    args = p.parse_args()
    for name in [s for s in args.scenarios.split(",") if s]:
        fn = _SCENARIOS.get(name)
        if fn is None:
            print("RESULT %s FAIL scenario not implemented by the %s driver" % (name, client), flush=True)
            continue
        box = {}

        def run():
            try:
                fn(Ctx(args, name, client))
                box["ok"] = True
            except BaseException as e:  # noqa: BLE001
                box["err"] = e
                box["tb"] = traceback.format_exc()

        t = threading.Thread(target=run, daemon=True)
        start = time.monotonic()
        t.start()
        t.join(args.scenario_timeout)
        took = time.monotonic() - start
        if t.is_alive():
            print("RESULT %s FAIL timed out after %.0fs" % (name, args.scenario_timeout), flush=True)
            # The stuck thread may hold client resources; the remaining scenarios still get their chance.
        elif box.get("ok"):
            print("RESULT %s PASS (%.1fs)" % (name, took), flush=True)
        else:
            e = box["err"]
            sys.stderr.write(box.get("tb", ""))
            reason = str(e) if isinstance(e, AssertionError) else "%s: %s" % (type(e).__name__, e)
            print("RESULT %s FAIL %s" % (name, one_line(reason)), flush=True)
    sys.stdout.flush()
    sys.stderr.flush()
    import os
    os._exit(0)  # do not wait for stuck client threads
