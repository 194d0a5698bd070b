# pool, host and SR records; map and set parameters; case 15.
$ xe host-list params=uuid,name-label,host-metrics-live
1|uuid ( RO)                 : {host}
1|           name-label ( RW): {host-name}
1|    host-metrics-live ( RO): true
1|
1|
? 0
# With no SR at all xe has nothing to filter, so create one first: the filter must then drop it.
$= sr xe sr-create name-label=local type=file shared=true device-config:location={state}
$ xe sr-list name-label=MGMT-HA --minimal
1|
? 0
$ xe sr-list name-label=local --minimal
1|{sr}
? 0
# The default field set of sr-list; `host` is the name-label of the one host with a PBD.
$ xe sr-list
1|uuid ( RO)                : {sr}
1|          name-label ( RW): local
1|    name-description ( RW): 
1|                host ( RO): {host-name}
1|                type ( RO): file
1|        content-type ( RO): 
1|
1|
? 0
$ xe pool-list params=uuid,master,default-SR,ha-enabled
1|uuid ( RO)          : {pool}
1|        master ( RO): {host}
1|    default-SR ( RW): <not in database>
1|    ha-enabled ( RO): false
1|
1|
? 0
$ xe pool-list --minimal params=master
1|{host}
? 0
$ xe pool-param-set uuid={pool} ha-host-failures-to-tolerate=-1
2|The value given is invalid
2|field: ha_host_failures_to_tolerate
2|value: -1
? 1
$ xe pool-param-get uuid={pool} param-name=ha-configuration
1|
? 0
$ xe pool-param-set uuid={pool} other-config:a=1 other-config:b=x,y name-label=lab
? 0
$ xe pool-param-get uuid={pool} param-name=other-config
1|a: 1; b: x,y
? 0
$ xe pool-param-get uuid={pool} param-name=other-config param-key=b
1|x,y
? 0
$ xe pool-param-get uuid={pool} param-name=other-config param-key=b --minimal
1|x\,y
? 0
$ xe pool-param-get uuid={pool} param-name=other-config param-key=zz
2|Error: Key zz not found in map
? 1
$ xe pool-list other-config:a=1 params=name-label
1|name-label ( RW)    : lab
1|
1|
? 0
$ xe pool-param-remove uuid={pool} param-name=other-config param-key=a
? 0
$ xe pool-param-remove uuid={pool} param-name=other-config param-key=a
2|Error: Key a is not in map
? 1
$ xe pool-param-add uuid={pool} param-name=tags param-key=red
? 0
$ xe pool-param-add uuid={pool} param-name=tags param-key=blue
? 0
$ xe pool-list tags:contains=red params=tags,other-config
1|other-config (MRW)    : b: x,y
1|            tags (SRW): red, blue
1|
1|
? 0
$ xe pool-param-clear uuid={pool} param-name=tags
? 0
$ xe pool-param-get uuid={pool} param-name=tags
1|
? 0
$ xe host-param-set uuid={host} cpu_info:x=1
2|Error: Map field 'cpu_info' is read-only.
? 1
$ xe host-cpu-list number=0 params=number
1|number ( RO)    : 0
1|
1|
? 0
