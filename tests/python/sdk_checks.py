"""Drive xapid with the official XenAPI Python SDK (PyPI package `XenAPI`) over XML-RPC.

Usage: sdk_checks.py URL PASSWORD. Every answer is checked; the first mismatch raises, so the
process exits non-zero with a traceback. On success it prints `sdk checks passed: N`.
"""
import sys

import XenAPI

url, password = sys.argv[1], sys.argv[2]
checks = 0


def check(cond, what):
    global checks
    if not cond:
        raise AssertionError(what)
    checks += 1


def failure(fn, *args):
    try:
        fn(*args)
    except XenAPI.Failure as f:
        return f.details
    raise AssertionError("expected a XenAPI.Failure from %r" % (fn,))


session = XenAPI.Session(url)
session.xenapi.login_with_password("root", password, "1.0", "xenha-sdk-test")
x = session.xenapi

pools = x.pool.get_all()
check(len(pools) == 1 and pools[0].startswith("OpaqueRef:"), "one pool: %r" % pools)
pool = x.pool.get_record(pools[0])
check(pool["ha_enabled"] is False, "ha_enabled is a real bool")
check(pool["ha_host_failures_to_tolerate"] == "0", "ints arrive as decimal strings, as from xapi")
check(pool["ha_configuration"] == {}, "maps arrive as dicts")

hosts = x.host.get_all_records()
check(len(hosts) == 1, "one host")
(host_ref, host), = hosts.items()
check(pool["master"] == host_ref, "the host is master")
check(host["enabled"] is True, "host enabled")

cpus = x.host_cpu.get_all_records()
with open("/proc/cpuinfo") as f:
    processors = sum(1 for line in f if line.startswith("processor"))
check(len(cpus) == processors, "one host_cpu per logical CPU: %d vs %d" % (len(cpus), processors))
check(sorted(int(c["number"]) for c in cpus.values()) == list(range(processors)), "CPU numbers")
check(all(c["host"] == host_ref for c in cpus.values()), "every CPU belongs to the host")
check(set(host["host_CPUs"]) == set(cpus), "host.host_CPUs lists them")

# A setter on a read-write field, read back.
x.pool.set_name_label(pools[0], "sdk pool")
check(x.pool.get_name_label(pools[0]) == "sdk pool", "set_name_label sticks")

# Strings XML cannot carry: the database keeps what comes before the first such character, as
# xapi's does, whichever protocol set it, so every later read is a document expat accepts.
import json
import urllib.request

body = json.dumps({"jsonrpc": "2.0", "method": "pool.set_name_label",
                   "params": [session._session, pools[0], "x\u0001y\ufffe"], "id": 1}).encode()
req = urllib.request.Request(url.rstrip("/") + "/jsonrpc", body, {"Content-Type": "application/json"})
answer = json.load(urllib.request.urlopen(req, timeout=30))
check(answer.get("result") == "", "JSON-RPC set_name_label: %r" % answer)
check(x.pool.get_record(pools[0])["name_label"] == "x", "cut at the control character")
x.pool.set_name_label(pools[0], "xml\u0002rpc")
check(x.pool.get_name_label(pools[0]) == "xml", "XML-RPC input is cut too")
x.pool.set_other_config(pools[0], {"k\u0003ey": "va\u0004lue", "fine": "ok"})
check(x.pool.get_other_config(pools[0]) == {"k": "va", "fine": "ok"}, "map keys and values are cut")
# An error echoing a bad UUID still reads: the character comes back as U+FFFD.
check(failure(x.VM.get_by_uuid, "dead\u0001beef") == ["UUID_INVALID", "VM", "dead\ufffdbeef"],
      "an echoed control character")

# An unknown method, a wrong parameter count, a bad UUID.
check(failure(x.pool.frobnicate) == ["MESSAGE_METHOD_UNKNOWN", "pool.frobnicate"], "unknown method")
check(failure(x.pool.get_record) == ["MESSAGE_PARAMETER_COUNT_MISMATCH", "pool.get_record", "1", "0"], "count")
check(failure(x.VM.get_by_uuid, "deadbeef") == ["UUID_INVALID", "VM", "deadbeef"], "bad uuid")
check(failure(x.pool.set_ha_host_failures_to_tolerate, pools[0], "-1")
      == ["INVALID_VALUE", "ha_host_failures_to_tolerate", "-1"], "negative failures to tolerate")

# Async calls answer a task at once; the task carries the outcome, its result as XML-RPC text.
import time


def finished(task):
    deadline = time.monotonic() + 30
    while x.task.get_status(task) == "pending":
        if time.monotonic() > deadline:
            raise AssertionError("task %s still pending" % task)
        time.sleep(0.05)
    return x.task.get_record(task)


free = x.host.compute_free_memory(host_ref)
task = x.Async.host.compute_free_memory(host_ref)
check(task.startswith("OpaqueRef:") and task in x.task.get_all(), "Async answers a task: %r" % task)
rec = finished(task)
check(rec["status"] == "success" and rec["name_label"] == "Async.host.compute_free_memory", "%r" % rec)
check(x.task.get_result(task) == "<value>%s</value>" % free, "task result: %r" % rec["result"])
check(rec["progress"] == 1.0 and x.task.get_error_info(task) == [], "progress and no error: %r" % rec)
x.task.destroy(task)
check(task not in x.task.get_all(), "task.destroy forgets the task")
task = x.Async.VM.start("OpaqueRef:NULL", False, False)
rec = finished(task)
check(rec["status"] == "failure" and rec["error_info"] == ["HANDLE_INVALID", "VM", "OpaqueRef:NULL"],
      "a failed async call: %r" % rec)
check(failure(x.Async.pool.frobnicate) == ["MESSAGE_METHOD_UNKNOWN", "Async.pool.frobnicate"],
      "an unknown async method fails at once")

# A bad password.
bad = XenAPI.Session(url)
details = failure(bad.xenapi.login_with_password, "root", "not-the-password", "1.0", "xenha-sdk-test")
check(details == ["SESSION_AUTHENTICATION_FAILED", "root", "Authentication failure"], "bad password: %r" % details)

# Logout ends the session.
sid = session._session
session.xenapi.session.logout()
# The SDK forgets the session on logout and would log in again on SESSION_INVALID, so ask
# through its underlying XML-RPC proxy and read the raw envelope.
raw = getattr(XenAPI.Session(url), "pool.get_all")(sid)
check(raw == {"Status": "Failure", "ErrorDescription": ["SESSION_INVALID", sid]}, "after logout: %r" % raw)

print("sdk checks passed: %d" % checks)
