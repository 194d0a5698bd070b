# Reference §6 cases 6, 7, 8, 10, 11, 18 on a one-host pool with HA off.
$ xe host-emergency-ha-disable
2|Error: This operation is dangerous and may cause data loss. This operation must be forced (use --force).
? 1
$ xe host-emergency-ha-disable --force
2|The operation could not be performed because HA is not enabled on the Pool
? 1
$ xe host-emergency-ha-disable --force soft=true
? 0
$ xe host-emergency-ha-disable --force soft=maybe
2|Error: Failed to parse parameter 'soft': Expected 'true','t','yes','y','1','false','f','no','n','0' got maybe
? 1
$ xe pool-ha-disable
2|The operation could not be performed because HA is not enabled on the Pool
? 1
$ xe pool-emergency-transition-to-master
1|Host agent is already master. Use '--force' to execute the operation anyway.
? 0
# OCaml's string_of_float 10. is `10.`.
$ xe pool-emergency-transition-to-master --force
1|Host agent will restart and transition to master in 10. seconds...
? 0
$ xe host-is-in-emergency-mode
1|false
? 0
$ xe host-is-in-emergency-mode --minimal
1|
? 0
$ xe pool-recover-slaves
? 0
$ xe pool-ha-prevent-restarts-for seconds=0
? 0
@vm web
$ xe pool-ha-compute-hypothetical-max-host-failures-to-tolerate vm-uuid={vm:web}
2|Error: Call requires an equal number of vm-uuid and restart-priority arguments
? 1
$ xe pool-ha-enable heartbeat-sr-uuids=no-such-sr ha-config:timeout=90
2|The uuid you supplied was invalid.
2|type: SR
2|uuid: no-such-sr
? 1
# Reference case 2 on a one-host pool with nothing protected: xapi bisects up to the number of
# hosts, so losing the only host is tolerated when there is nothing to restart.
$ xe pool-ha-compute-max-host-failures-to-tolerate
1|1
? 0
