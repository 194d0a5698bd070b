# Storage lists and the commands xapid does not answer yet (pool.designate_new_master,
# host.shutdown, host.reboot, PBD.plug/unplug): their checks before the call.
$ xe pbd-list
? 0
$ xe vdi-list --minimal
1|
? 0
$ xe pbd-list no-such-field=1
? 0
$ xe pbd-plug uuid=no-such-pbd
2|The uuid you supplied was invalid.
2|type: PBD
2|uuid: no-such-pbd
? 1
$ xe pbd-unplug
2|Required parameter not found: uuid
2|For usage run: 'xe help'
? 1
$ xe host-reboot host=no-such-host
2|Error: No matching hosts found
? 1
$ xe host-shutdown bogus=1
2|Error: Unknown field 'bogus'
? 1
$ xe pool-designate-new-master host-uuid=no-such-host
2|The uuid you supplied was invalid.
2|type: host
2|uuid: no-such-host
? 1
$ xe help pool-designate-new-master
1|command name            : pool-designate-new-master
1|        reqd params     : host-uuid
1|        optional params : 
1|        description     : Request an orderly handover of the role of master to another host.
1|
1|
? 0
