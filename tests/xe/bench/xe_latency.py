"""Median wall time of `xe host-list` against a local xapid over its Unix socket, beside the
same query through the official XenAPI Python SDK.

Usage: xe_latency.py XE_BINARY SOCKET_PATH [RUNS]. Runs each command RUNS times (default 200)
as a fresh process, after 10 warm-up runs, checks both print the same text, and prints a
Markdown table of median and 90th-percentile wall times.
"""
import os
import statistics
import subprocess
import sys
import time

xe, sock = sys.argv[1], sys.argv[2]
runs = int(sys.argv[3]) if len(sys.argv) > 3 else 200
here = os.path.dirname(os.path.abspath(__file__))
env = dict(os.environ, XAPI_SOCKET=sock)
env.pop("XE_EXTRA_ARGS", None)

cmds = {
    "xe host-list (Rust, Unix socket, JSON-RPC)": [xe, "host-list"],
    "xe host-list --xmlrpc (Rust, Unix socket)": [xe, "host-list", "--xmlrpc"],
    "Python SDK (XenAPI %s), XML-RPC, same query" % subprocess.run(
        [sys.executable, "-c", "import importlib.metadata as m; print(m.version('XenAPI'))"],
        capture_output=True, text=True).stdout.strip():
        [sys.executable, os.path.join(here, "sdk_host_list.py"), sock],
}

outputs = {}
rows = []
for name, argv in cmds.items():
    for _ in range(10):
        subprocess.run(argv, env=env, capture_output=True, check=True)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        p = subprocess.run(argv, env=env, capture_output=True, check=True)
        times.append(time.perf_counter() - t)
    outputs[name] = p.stdout
    times.sort()
    rows.append((name, statistics.median(times) * 1000, times[int(len(times) * 0.9)] * 1000))

texts = set(outputs.values())
assert len(texts) == 1, "outputs differ: %r" % outputs
print("| command | median (ms) | p90 (ms) |")
print("|---|---:|---:|")
for name, med, p90 in rows:
    print("| %s | %.2f | %.2f |" % (name, med, p90))
print()
print("runs per command: %d; identical output: %d bytes" % (runs, len(texts.pop())))
