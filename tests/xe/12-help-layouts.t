# xe help layouts (cli_frontend.ml rio_help, make_list) and the client usage (newcli.ml usage):
# the completion scripts read `xe help --minimal --all`; usage goes to stderr with exit 0.
$ xe help
1|Usage:
1|  xe <command>
1|    [ -s <server> ]            XenServer host
1|    [ -p <port> ]              XenServer port number
1|    [ -u <username> -pw <password> | -pwf <password file> ]
1|                               User authentication (password or file)
1|    [ --nossl ]                Disable SSL/TLS
1|    [ --debug ]                Enable debug output
1|    [ --debug-on-fail ]        Enable debug output only on failure
1|    [ --traceparent <value> ]  Distributed tracing context
1|    [ <other arguments> ... ]  Command-specific options
1|
1|To get help on a specific command:
1|  xe help <command>
1|
1|To get a full listing of commands:
1|  xe help --all
1|
1|Common command list
1|-------------------
1|
1|    sr-list, vm-list, vm-migrate, vm-reboot, vm-shutdown, vm-start
? 0
$ xe help --all
1|Usage:
1|  xe <command>
1|    [ -s <server> ]            XenServer host
1|    [ -p <port> ]              XenServer port number
1|    [ -u <username> -pw <password> | -pwf <password file> ]
1|                               User authentication (password or file)
1|    [ --nossl ]                Disable SSL/TLS
1|    [ --debug ]                Enable debug output
1|    [ --debug-on-fail ]        Enable debug output only on failure
1|    [ --traceparent <value> ]  Distributed tracing context
1|    [ <other arguments> ... ]  Command-specific options
1|
1|To get help on a specific command:
1|  xe help <command>
1|
1|Full command list
1|-----------------
1|
1|    host-cpu-info, host-cpu-list, host-cpu-param-get, host-cpu-param-list
1|    host-disable, host-emergency-ha-disable, host-enable, host-evacuate
1|    host-forget, host-is-in-emergency-mode, host-list, host-param-add
1|    host-param-clear, host-param-get, host-param-list, host-param-remove
1|    host-param-set, host-reboot, host-shutdown
1|    
1|    vm-create, vm-destroy, vm-list, vm-migrate, vm-param-add, vm-param-clear
1|    vm-param-get, vm-param-list, vm-param-remove, vm-param-set, vm-reboot
1|    vm-shutdown, vm-start
1|    
1|    message-list, message-param-get, message-param-list, pbd-list
1|    pbd-param-add, pbd-param-clear, pbd-param-get, pbd-param-list
1|    pbd-param-remove, pbd-param-set, pbd-plug, pbd-unplug
1|    pool-designate-new-master, pool-dump-database, pool-eject
1|    pool-emergency-reset-master, pool-emergency-transition-to-master
1|    pool-ha-compute-hypothetical-max-host-failures-to-tolerate
1|    pool-ha-compute-max-host-failures-to-tolerate, pool-ha-disable
1|    pool-ha-enable, pool-ha-what-if, pool-join, pool-list, pool-param-add
1|    pool-param-clear, pool-param-get, pool-param-list, pool-param-remove
1|    pool-param-set, pool-recover-slaves, sr-create, sr-list, sr-param-add
1|    sr-param-clear, sr-param-get, sr-param-list, sr-param-remove
1|    sr-param-set, user-add, user-list, user-remove, user-set-password
1|    user-set-role, vdi-create, vdi-list, vdi-param-add, vdi-param-clear
1|    vdi-param-get, vdi-param-list, vdi-param-remove, vdi-param-set
? 0
$ xe help --minimal --all
1|host-cpu-info,host-cpu-list,host-cpu-param-get,host-cpu-param-list,host-disable,host-emergency-ha-disable,host-enable,host-evacuate,host-forget,host-is-in-emergency-mode,host-list,host-param-add,host-param-clear,host-param-get,host-param-list,host-param-remove,host-param-set,host-reboot,host-shutdown,message-list,message-param-get,message-param-list,pbd-list,pbd-param-add,pbd-param-clear,pbd-param-get,pbd-param-list,pbd-param-remove,pbd-param-set,pbd-plug,pbd-unplug,pool-designate-new-master,pool-dump-database,pool-eject,pool-emergency-reset-master,pool-emergency-transition-to-master,pool-ha-compute-hypothetical-max-host-failures-to-tolerate,pool-ha-compute-max-host-failures-to-tolerate,pool-ha-disable,pool-ha-enable,pool-ha-what-if,pool-join,pool-list,pool-param-add,pool-param-clear,pool-param-get,pool-param-list,pool-param-remove,pool-param-set,pool-recover-slaves,sr-create,sr-list,sr-param-add,sr-param-clear,sr-param-get,sr-param-list,sr-param-remove,sr-param-set,user-add,user-list,user-remove,user-set-password,user-set-role,vdi-create,vdi-list,vdi-param-add,vdi-param-clear,vdi-param-get,vdi-param-list,vdi-param-remove,vdi-param-set,vm-create,vm-destroy,vm-list,vm-migrate,vm-param-add,vm-param-clear,vm-param-get,vm-param-list,vm-param-remove,vm-param-set,vm-reboot,vm-shutdown,vm-start
? 0
$ xe
2|Usage:
2|  xe <command>
2|    [ -s <server> ]            XenServer host
2|    [ -p <port> ]              XenServer port number
2|    [ -u <username> -pw <password> | -pwf <password file> ]
2|                               User authentication (password or file)
2|    [ --nossl ]                Disable SSL/TLS
2|    [ --debug ]                Enable debug output
2|    [ --debug-on-fail ]        Enable debug output only on failure
2|    [ --minimal ]              Output only values in a comma-separated lists
2|    [ --traceparent <value> ]  Distributed tracing context
2|    [ --trace ]                Show task stacktrace on failure
2|    [ <other arguments> ... ]  Command-specific options
2|
2|A full list of commands can be obtained by running
2|  xe help -s <server> -p <port>
? 0
$ xe host-list --help
2|Usage:
2|  xe <command>
2|    [ -s <server> ]            XenServer host
2|    [ -p <port> ]              XenServer port number
2|    [ -u <username> -pw <password> | -pwf <password file> ]
2|                               User authentication (password or file)
2|    [ --nossl ]                Disable SSL/TLS
2|    [ --debug ]                Enable debug output
2|    [ --debug-on-fail ]        Enable debug output only on failure
2|    [ --minimal ]              Output only values in a comma-separated lists
2|    [ --traceparent <value> ]  Distributed tracing context
2|    [ --trace ]                Show task stacktrace on failure
2|    [ <other arguments> ... ]  Command-specific options
2|
2|A full list of commands can be obtained by running
2|  xe help -s <server> -p <port>
? 0
$ xe -p 99999 host-list
2|Port number must be an integer (0-65535)
2|Usage:
2|  xe <command>
2|    [ -s <server> ]            XenServer host
2|    [ -p <port> ]              XenServer port number
2|    [ -u <username> -pw <password> | -pwf <password file> ]
2|                               User authentication (password or file)
2|    [ --nossl ]                Disable SSL/TLS
2|    [ --debug ]                Enable debug output
2|    [ --debug-on-fail ]        Enable debug output only on failure
2|    [ --minimal ]              Output only values in a comma-separated lists
2|    [ --traceparent <value> ]  Distributed tracing context
2|    [ --trace ]                Show task stacktrace on failure
2|    [ <other arguments> ... ]  Command-specific options
2|
2|A full list of commands can be obtained by running
2|  xe help -s <server> -p <port>
? 0
