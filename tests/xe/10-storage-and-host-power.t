# Storage lists, and the checks xe makes before calling pool.designate_new_master,
# host.shutdown, host.reboot and PBD.plug/unplug.
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
# sr-create and vdi-create: their parameter checks and the errors xapid returns.
$ xe sr-create name-label=shared type=file shared=maybe
2|Error: Failed to parse parameter 'shared': Expected 'true','t','yes','y','1','false','f','no','n','0' got maybe
? 1
$ xe sr-create name-label=shared type=file host-uuid=no-such-host
2|The uuid you supplied was invalid.
2|type: host
2|uuid: no-such-host
? 1
$ xe sr-create name-label=shared type=file device-config:path-filename={state}/no-such-file
2|File not found: {state}/no-such-fileError: File not found
? 1
$ xe sr-create name-label=shared
2|Required parameter not found: type
2|For usage run: 'xe help'
? 1
$ xe vdi-create sr-uuid=no-such-sr name-label=disk virtual-size=1GiB
2|The uuid you supplied was invalid.
2|type: SR
2|uuid: no-such-sr
? 1
