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
1|sr-list,vm-list,vm-start
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
