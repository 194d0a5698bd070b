# Local users (extension commands) and what a vm-operator is refused, over TCP with -u/-pw.
$= alice xe user-add user-name=alice user-password=alice-pw role=vm-operator
$ xe user-list short-name=alice
1|uuid ( RO)          : {alice}
1|    short-name ( RO): alice
1|          role ( RO): vm-operator
1|
1|
? 0
$ xe user-list params=short-name,role role=pool-admin
1|short-name ( RO)    : root
1|          role ( RO): pool-admin
1|
1|
? 0
$ xe user-list no-such-field=1
2|Error: Unknown field 'no-such-field'
? 1
$ xe user-add user-name=alice user-password=x role=read-only
2|The value given is invalid
2|field: short_name
2|value: alice
? 1
$ xe user-add user-name=bob user-password=x role=emperor
2|The value given is invalid
2|field: role
2|value: emperor
? 1
@vm app
# A vm-operator may start and stop VMs...
$ xe -s localhost --nossl -p {http-port} -u alice -pw alice-pw vm-start vm=app
? 0
$ xe -s localhost --nossl -p {http-port} -u alice -pw alice-pw vm-shutdown vm=app --force
? 0
# ...but not do a pool-admin's work, and the refusal changes nothing.
$ xe -s localhost --nossl -p {http-port} -u alice -pw alice-pw user-add user-name=mallory user-password=x role=pool-admin
2|RBAC permission denied.
2|permission: user.create_local
2|message: No permission in user session. (Roles with this permission: pool-admin)
? 1
$ xe -s localhost --nossl -p {http-port} -u alice -pw alice-pw user-set-role uuid={alice} role=pool-admin
2|RBAC permission denied.
2|permission: user.set_role
2|message: No permission in user session. (Roles with this permission: pool-admin)
? 1
$ xe -s localhost --nossl -p {http-port} -u alice -pw alice-pw host-disable
2|RBAC permission denied.
2|permission: host.disable
2|message: No permission in user session. (Roles with this permission: pool-admin, pool-operator)
? 1
$ xe user-list params=short-name --minimal
1|root,alice
? 0
$ xe host-list params=enabled --minimal
1|true
? 0
# root changes alice's role and password; the old password no longer works.
$ xe user-set-role uuid={alice} role=pool-operator
? 0
$ xe user-set-password uuid={alice} user-password=new-pw
? 0
$ xe -s localhost --nossl -p {http-port} -u alice -pw alice-pw host-list params=enabled
2|Authentication failed
2|For usage run: 'xe help'
? 1
$ xe -s localhost --nossl -p {http-port} -u alice -pw new-pw host-disable
? 0
$ xe host-list params=enabled --minimal
1|false
? 0
$ xe user-remove uuid={alice}
? 0
$ xe user-list params=short-name --minimal
1|root
? 0
$ xe user-remove uuid={alice}
2|The uuid you supplied was invalid.
2|type: user
2|uuid: {alice}
? 1
