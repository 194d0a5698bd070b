# Host selector commands on a one-host pool (reference §3 host-evacuate, host-disable).
$ xe host-disable
? 0
$ xe host-list params=enabled
1|enabled ( RO)    : false
1|
1|
? 0
$ xe host-enable host={host-name}
? 0
$ xe host-list params=enabled --minimal
1|true
? 0
$ xe host-disable host=no-such-host
2|Error: No matching hosts found
? 1
$ xe host-disable auto-enable=perhaps
2|Error: Failed to parse parameter 'auto-enable': Expected 'true','t','yes','y','1','false','f','no','n','0' got perhaps
? 1
$ xe host-evacuate uuid={host}
? 0
$ xe host-evacuate no-such-field=1
2|Error: Unknown field 'no-such-field'
? 1
@vm web
@vm db
$ xe vm-start
2|Error: Multiple matches VMs found. --multiple required to complete the operation
? 1
# xapi only maps CLI_failed_to_find_param to 'is not a field of the VM class'; an unknown
# filter fails earlier, in get_field_type.
$ xe vm-start name-label=web bogus=1
2|Error: Unknown field 'bogus'
? 1
