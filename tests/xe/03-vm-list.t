# Reference §6 cases 3, 4, 5 (empty and one VM), 14 (all four values), 16, 17.
$ xe vm-list --minimal
1|
? 0
$ xe vm-list
? 0
@vm web
@vm tmpl is_a_template=true
$ xe vm-list params=uuid,name-label,power-state,VCPUs-number,memory-actual
1|uuid ( RO)             : {vm:web}
1|       name-label ( RW): web
1|      power-state ( RO): halted
1|    memory-actual ( RO): 0
1|     VCPUs-number ( RO): 0
1|
1|
? 0
$ xe vm-list
1|uuid ( RO)           : {vm:web}
1|     name-label ( RW): web
1|    power-state ( RO): halted
1|
1|
? 0
$ xe vm-list --minimal
1|{vm:web}
? 0
# `--output xe` names the default layout, so --minimal goes with it.
$ xe vm-list --output xe --minimal
1|{vm:web}
? 0
$ xe vm-list --output=xe
1|uuid ( RO)           : {vm:web}
1|     name-label ( RW): web
1|    power-state ( RO): halted
1|
1|
? 0
# vm-list always adds is-a-template=false, so asking for templates finds nothing.
$ xe vm-list is-a-template=true params=name-label
? 0
$ xe vm-list no-such-field=1
2|Error: Unknown field 'no-such-field'
? 1
$ xe vm-param-set uuid={vm:web} ha-restart-priority=1
2|The value given is invalid
2|field: ha_restart_priority
2|value: 1
? 1
$ xe vm-param-set uuid={vm:web} ha-restart-priority=restart order=2
? 0
$ xe vm-param-get uuid={vm:web} param-name=ha-restart-priority
1|restart
? 0
$ xe vm-list params=name-label,ha-always-run,ha-restart-priority,order
1|name-label ( RW)                    : web
1|    ha-always-run ( RW) [DEPRECATED]: false
1|           ha-restart-priority ( RW): restart
1|                         order ( RW): 2
1|
1|
? 0
# The other two values case 14 accepts silently: best-effort, and empty (unprotected).
$ xe vm-param-set uuid={vm:web} ha-restart-priority=best-effort
? 0
$ xe vm-param-get uuid={vm:web} param-name=ha-restart-priority
1|best-effort
? 0
$ xe vm-param-set uuid={vm:web} ha-restart-priority=
? 0
$ xe vm-param-get uuid={vm:web} param-name=ha-restart-priority
1|
? 0
$ xe vm-param-set uuid={vm:web} ha-restart-priority=restart
? 0
$ xe vm-param-set uuid={vm:web} order=soon
2|Error: Failed to parse parameter 'order': expecting an integer
? 1
$ xe vm-param-set uuid={vm:web} power-state=running
2|Error: Field 'power-state' is read-only.
? 1
$ xe vm-param-list uuid=deadbeef
2|The uuid you supplied was invalid.
2|type: VM
2|uuid: deadbeef
? 1
$ xe vm-start vm=nosuchvm
2|Error: No matching VMs found
? 1
$ xe vm-param-get uuid={vm:web} param-name=nonsense
2|Error code: Missing parameter
2|Error parameters: nonsense
? 1
# VM memory fields take xe's unit suffixes.
$ xe vm-param-set uuid={vm:web} memory-static-max=2GiB
? 0
$ xe vm-param-get uuid={vm:web} param-name=memory-static-max
1|2147483648
? 0
$ xe vm-param-set uuid={vm:web} memory-dynamic-max=lots
2|Error: Failed to parse field 'memory-dynamic-max': expecting an integer (possibly with suffix KiB, MiB, GiB, TiB), got 'lots'
? 1
