# VM lifecycle: vm-create (an extension), vm-shutdown, vm-reboot, vm-destroy, vm-migrate's
# checks before any call.
$= web xe vm-create name-label=web memory-static-max=1GiB other-config:command=sleep
$ xe vm-list uuid={web} params=name-label,power-state,memory-static-max
1|name-label ( RW)           : web
1|          power-state ( RO): halted
1|    memory-static-max ( RW): 1073741824
1|
1|
? 0
$ xe vm-param-get uuid={web} param-name=other-config param-key=command
1|sleep
? 0
$ xe vm-create name-label=bad memory-static-max=lots
2|Error: Failed to parse field 'memory-static-max': expecting an integer (possibly with suffix KiB, MiB, GiB, TiB), got 'lots'
? 1
$ xe vm-create name-label=db affinity=no-such-host
2|Error: Host no-such-host not found
? 1
$= db xe vm-create name-label=db affinity={host-name} memory-static-max=512MiB
$ xe vm-list name-label=db params=affinity,memory-static-max
1|memory-static-max ( RW)    : 536870912
1|             affinity ( RW): {host}
1|
1|
? 0
$ xe vm-shutdown vm=web
2|You attempted an operation on a VM that was not in an appropriate power state at the time; for example, you attempted to start a VM that was already running. The parameters returned are the VM's handle, and the expected and actual VM state at the time of the call.
2|vm: {web} (web)
2|expected: running
2|actual: halted
? 1
$ xe vm-start --multiple
? 0
$ xe vm-shutdown
2|Error: Multiple matches VMs found. --multiple required to complete the operation
? 1
$ xe vm-reboot vm=web
? 0
$ xe vm-reboot uuid={web} --force
? 0
$ xe vm-shutdown vm=web
? 0
$ xe vm-list power-state=running --minimal
1|{db}
? 0
$ xe vm-shutdown --force power-state=running
? 0
$ xe vm-list power-state=halted params=name-label --minimal
1|web,db
? 0
$ xe vm-reboot vm=no-such-vm
2|Error: No matching VMs found
? 1
$ xe vm-destroy uuid=no-such-uuid
2|The uuid you supplied was invalid.
2|type: VM
2|uuid: no-such-uuid
? 1
$ xe vm-destroy uuid={db}
? 0
$ xe vm-list params=name-label --minimal
1|web
? 0
$ xe vm-destroy
2|Required parameter not found: uuid
2|For usage run: 'xe help'
? 1
# vm-migrate: options and the destination are checked before any VM is selected, as in xapi.
$ xe vm-migrate vm=web
2|Error: No destination host specified
? 1
$ xe vm-migrate vm=web host=no-such-host
2|Error: Host no-such-host not found
? 1
$ xe vm-migrate vm=web host-uuid={host} live=maybe
2|Error: Failed to parse parameter 'live': Expected 'true','t','yes','y','1','false','f','no','n','0' got maybe
? 1
$ xe vm-migrate vm=no-such-vm host={host}
2|Error: No matching VMs found
? 1
