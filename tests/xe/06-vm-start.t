# vm-start against the daemon's VM power operations; error parameters that are refs print as
# `uuid (name-label)`, as xapi's ref_convert does.
@vm web
$ xe vm-start vm=web
? 0
$ xe vm-list params=name-label,power-state,resident-on
1|name-label ( RW)     : web
1|    power-state ( RO): running
1|    resident-on ( RO): {host}
1|
1|
? 0
$ xe vm-start uuid={vm:web}
2|You attempted an operation on a VM that was not in an appropriate power state at the time; for example, you attempted to start a VM that was already running. The parameters returned are the VM's handle, and the expected and actual VM state at the time of the call.
2|vm: {vm:web} (web)
2|expected: halted
2|actual: running
? 1
$ xe vm-list power-state=running --minimal
1|{vm:web}
? 0
# What if the running VM were protected? With one host there is nowhere to restart it.
$ xe pool-ha-compute-hypothetical-max-host-failures-to-tolerate vm-uuid={vm:web} restart-priority=restart
1|0
? 0
$ xe pool-ha-compute-hypothetical-max-host-failures-to-tolerate vm-uuid={vm:web} restart-priority=1
2|The value given is invalid
2|field: ha_restart_priority
2|value: 1
? 1
