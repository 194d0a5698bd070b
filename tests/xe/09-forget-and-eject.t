# host-forget and pool-eject without --force: xe's warnings, then its `Type 'yes'` prompt on
# stdin. Anything but yes aborts (exit 0); no input at all is xe's lost connection (exit 1).
$ xe host-forget uuid={host}
1|WARNING: A host should only be forgotten if it is physically unrecoverable;
1|WARNING: if possible, Hosts should be 'ejected' from the Pool instead.
1|WARNING: Once a host has been forgotten it will have to be re-installed.
1|WARNING: This operation is irreversible.
1|Type 'yes' to continue
2|Lost connection to the server.
? 1
$ xe host-forget uuid={host}
<|no thanks
1|WARNING: A host should only be forgotten if it is physically unrecoverable;
1|WARNING: if possible, Hosts should be 'ejected' from the Pool instead.
1|WARNING: Once a host has been forgotten it will have to be re-installed.
1|WARNING: This operation is irreversible.
1|Type 'yes' to continue
1|Aborted (you typed: 'no thanks')
? 0
$ xe host-forget uuid=no-such-host --force
2|The uuid you supplied was invalid.
2|type: host
2|uuid: no-such-host
? 1
$ xe pool-eject host-uuid={host} --minimal
<|nope
1|WARNING: Ejecting a host from the pool will reinitialise that host's local SRs.
1|WARNING: Any data contained with the local SRs will be lost.
1|Type 'yes' to continue
1|Aborted (you typed: 'nope')
1|
? 0
$ xe pool-eject host-uuid=no-such-host
2|The uuid you supplied was invalid.
2|type: host
2|uuid: no-such-host
? 1
$ xe host-list params=uuid --minimal
1|{host}
? 0
