# Default field sets per class (reference §2.2, cli_operations.ml gen_cmds), `<expensive field>`
# in *-list, and `--all` overriding filters.
$ xe host-list
1|uuid ( RO)                : {host}
1|          name-label ( RW): {host-name}
1|    name-description ( RW): Default install
1|
1|
? 0
$ xe pool-list
1|uuid ( RO)                : {pool}
1|          name-label ( RW): 
1|    name-description ( RW): 
1|              master ( RO): {host}
1|          default-SR ( RW): <not in database>
1|
1|
? 0
# The CPU's uuid, vendor and speed are this machine's; bind them, then check the layout.
$= cpu xe host-cpu-list number=0 --minimal
$= vendor xe host-cpu-param-get uuid={cpu} param-name=vendor
$= speed xe host-cpu-param-get uuid={cpu} param-name=speed
$ xe host-cpu-list number=0
1|uuid ( RO)           : {cpu}
1|         number ( RO): 0
1|         vendor ( RO): {vendor}
1|          speed ( RO): {speed}
1|    utilisation ( RO): <expensive field>
1|
1|
? 0
# `--all` prints every record whatever the filters say.
$ xe host-list name-label=no-such-host
? 0
$ xe host-list --all name-label=no-such-host
1|uuid ( RO)                : {host}
1|          name-label ( RW): {host-name}
1|    name-description ( RW): Default install
1|
1|
? 0
$ xe message-list
? 0
@message HA_POOL_OVERCOMMITTED 3 Pool {pool} The pool is overcommitted
$= ts xe message-list params=timestamp --minimal
$ xe message-list
1|uuid ( RO)         : {message:HA_POOL_OVERCOMMITTED}
1|         name ( RO): HA_POOL_OVERCOMMITTED
1|     priority ( RO): 3
1|        class ( RO): Pool
1|     obj-uuid ( RO): {pool}
1|    timestamp ( RO): {ts}
1|         body ( RO): The pool is overcommitted
1|
1|
? 0
