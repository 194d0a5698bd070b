"""`xe host-list` done with the official XenAPI Python SDK over the local Unix socket.

Usage: sdk_host_list.py SOCKET_PATH [REPEAT]. Logs in, reads every host record, prints uuid,
name-label and name-description as xe does, logs out. With REPEAT > 1 it does that REPEAT times
in one process and prints the median in-process time per query on stderr (this excludes Python's
start-up, to compare the calls alone).
"""
import statistics
import sys
import time

import XenAPI


def host_list(socket_path):
    # The SDK's UDS transport turns '_' in the URL host back into '/'.
    session = XenAPI.Session("http://" + socket_path.replace("/", "_") + "/",
                             transport=XenAPI.UDSTransport())
    session.xenapi.login_with_password("root", "", "1.0", "bench")
    try:
        out = []
        for rec in session.xenapi.host.get_all_records().values():
            rows = [("uuid ( RO)", rec["uuid"]), ("name-label ( RW)", rec["name_label"]),
                    ("name-description ( RW)", rec["name_description"])]
            w = 4 + max(len(k) for k, _ in rows)
            lines = [rows[0][0].ljust(w) + ": " + rows[0][1]]
            lines += [k.rjust(w) + ": " + v for k, v in rows[1:]]
            out.append("\n".join(lines) + "\n\n\n")
        return "".join(out)
    finally:
        session.xenapi.session.logout()


if __name__ == "__main__":
    path = sys.argv[1]
    repeat = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        text = host_list(path)
        times.append(time.perf_counter() - t)
    sys.stdout.write(text)
    if repeat > 1:
        sys.stderr.write("in-process median %.3f ms\n" % (statistics.median(times) * 1000))
