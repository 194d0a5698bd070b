# Reference §6 cases 1, 12, 13 and the grammar's own errors: none of them needs a login.
$ xe help host-cpu-info
1|command name            : host-cpu-info
1|        reqd params     : 
1|        optional params : uuid
1|        description     : Lists information about the host's physical CPUs.
1|
1|
? 0
$ xe help no-such-cmd
1|Unknown command 'no-such-cmd'
? 0
$ xe help --minimal
1|sr-list,vm-list,vm-migrate,vm-reboot,vm-shutdown,vm-start
? 0
$ xe pool-emergency-reset-master
2|Required parameter not found: master-address
2|For usage run: 'xe help'
? 1
$ xe no-such-cmd
2|Unknown command: no-such-cmd
2|For usage run: 'xe help'
? 1
$ xe uuid=123
2|Syntax error: 
2|For usage run: 'xe help'
? 1
$ xe vm-list -x y
2|Syntax error: 
2|For usage run: 'xe help'
? 1
$ xe -version
1|ThinCLI protocol: 0.2
? 0
$ xe help vm-shutdown
1|command name            : vm-shutdown
1|        reqd params     : 
1|        optional params : force, <vm-selectors>
1|        description     : Shutdown the selected VM(s). The optional argument --force will forcibly shut down the VM. VMs can be specified by filtering the full list of VMs on the values of zero or more fields. For example, specifying 'uuid=<some_uuid>' will select only the VM with that uuid, and 'power-state=halted' will select only VMs whose 'power-state' field is equal to 'halted'. The special pseudo-field 'vm' matches either of name-label or uuid. Where multiple VMs are matching, the option '--multiple' must be specified to perform the operation. The full list of fields that can be matched can be obtained by the command 'xe vm-list params=all'. If no parameters to select VMs are given, the operation will be performed on all VMs.
1|
1|
? 0
$ xe help pool-join
1|command name            : pool-join
1|        reqd params     : master-address, master-username, master-password
1|        optional params : force
1|        description     : Instruct host to join an existing pool.
1|
1|
? 0
$ xe pool-join master-address=10.0.0.1 master-username=root
2|Required parameter not found: master-password
2|For usage run: 'xe help'
? 1
# Our own options' errors carry xe's `Error:` prefix, and come before anything is contacted.
$ xe host-list --output yaml
2|Error: --output must be xe, json or table, not yaml
? 1
$ xe host-list --output
2|Error: --output needs a value
? 1
$ xe host-list --pin-cert
2|Error: --pin-cert needs a value
? 1
$ xe host-list --xmlrpc --jsonrpc
2|Error: --xmlrpc and --jsonrpc cannot be combined
? 1
# xapi reads `minimal` with OCaml's bool_of_string, before anything else and even for `help`:
# only true and false, and any other value is an internal error, not a quiet "false".
$ xe vm-list minimal=yes
2|The server failed to handle your request, due to an internal error. The given message may give details useful for debugging the problem.
2|message: Invalid_argument("bool_of_string")
? 1
$ xe help minimal=1
2|The server failed to handle your request, due to an internal error. The given message may give details useful for debugging the problem.
2|message: Invalid_argument("bool_of_string")
? 1
$ xe no-such-cmd minimal=TRUE
2|The server failed to handle your request, due to an internal error. The given message may give details useful for debugging the problem.
2|message: Invalid_argument("bool_of_string")
? 1
$ xe vm-list minimal=false
? 0
$ xe vm-list minimal=true
1|
? 0
