# pool-ha-what-if and pool-dump-database (extensions): the planner answered by xe itself, from the
# pool or from a snapshot file, without writing to the pool. One host: nothing protected survives
# the loss of every host; a protected VM needs a second host.
@vm web
$ xe vm-start vm=web
? 0
$ xe pool-ha-what-if --minimal
1|1
? 0
$ xe pool-ha-what-if protect={vm:web} --minimal
1|0
? 0
$ xe pool-ha-what-if protect={vm:web} add-hosts=1x1TiB --minimal
1|1
? 0
$ xe pool-ha-what-if protect={vm:web} add-hosts=1x1TiB failures=2 --minimal
1|false
? 0
$ xe pool-ha-compute-hypothetical-max-host-failures-to-tolerate vm-uuid={vm:web} restart-priority=restart
1|0
? 0
$ xe pool-dump-database file-name={state}/pool.json
? 0
$ xe pool-dump-database file-name={state}/pool.json
2|Error: {state}/pool.json exists; use --force to overwrite it
? 1
$ xe pool-dump-database file-name={state}/pool.json --force
? 0
$ xe pool-ha-what-if snapshot={state}/pool.json protect={vm:web} add-hosts=1x1TiB --minimal
1|1
? 0
$ xe pool-ha-what-if protect={vm:web}:always
2|Error: invalid restart priority "always" for VM {vm:web}: expected restart, best-effort or empty
? 1
$ xe pool-ha-what-if snapshot={state}/missing.json
2|Error: cannot read snapshot file {state}/missing.json: No such file or directory (os error 2)
? 1
$ xe pool-ha-what-if add-hosts=3
2|Error: add-hosts must be <count>x<memory>, e.g. 2x64GiB, not "3"
? 1
