//! The XenAPI server over real HTTP: exact JSON-RPC v1/v2 and XML-RPC shapes, errors with
//! xapi's parameters, hostile requests that must change nothing, persistence across restarts.

mod common;

use common::{raw, TestDaemon, PASSWORD};
use serde_json::{json, Value as Json};

fn rpc(d: &TestDaemon, req: Json) -> Json {
    let r = raw::post(&d.http, "/jsonrpc", req.to_string().as_bytes());
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/json"));
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.body))
}

fn login(d: &TestDaemon) -> String {
    let r = rpc(
        d,
        json!({"jsonrpc":"2.0","method":"session.login_with_password","params":["root", PASSWORD, "1.0", "tests"],"id":0}),
    );
    r["result"].as_str().unwrap().to_string()
}

fn call(d: &TestDaemon, method: &str, params: Json) -> Json {
    rpc(
        d,
        json!({"jsonrpc":"2.0","method":method,"params":params,"id":1}),
    )
}

fn xml_call(d: &TestDaemon, method: &str, params: &[&str]) -> raw::Response {
    let ps: String = params
        .iter()
        .map(|p| format!("<param><value>{p}</value></param>"))
        .collect();
    let body = format!("<?xml version=\"1.0\"?><methodCall><methodName>{method}</methodName><params>{ps}</params></methodCall>");
    raw::post(&d.http, "/", body.as_bytes())
}

/// Everything the API can show of the pool, to prove a request changed nothing.
fn snapshot(d: &TestDaemon, s: &str) -> Json {
    let classes = [
        "pool",
        "host",
        "host_cpu",
        "host_metrics",
        "VM",
        "SR",
        "VDI",
        "PBD",
        "message",
    ];
    Json::Array(
        classes
            .iter()
            .map(|c| call(d, &format!("{c}.get_all_records"), json!([s]))["result"].clone())
            .collect(),
    )
}

#[test]
fn json_rpc_v1_and_v2_answer_in_xapis_shapes() {
    let d = TestDaemon::start();
    let s = login(&d);
    assert!(s.starts_with("OpaqueRef:"), "{s}");

    // v1 success: result, error, id, in that order.
    let r = raw::post(
        &d.http,
        "/jsonrpc",
        format!(r#"{{"method":"pool.get_all","params":["{s}"],"id":"xyz"}}"#).as_bytes(),
    );
    let pool: Json = serde_json::from_str(&r.body).unwrap();
    let pool_ref = pool["result"][0].as_str().unwrap().to_string();
    assert_eq!(
        r.body,
        format!(r#"{{"result":["{pool_ref}"],"error":null,"id":"xyz"}}"#)
    );
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));

    // Reference case 24: a missing parameter, v1.
    let r = raw::post(
        &d.http,
        "/jsonrpc",
        format!(r#"{{"method":"pool.enable_ha","params":["{s}"],"id":1}}"#).as_bytes(),
    );
    assert_eq!(
        r.body,
        r#"{"result":null,"error":["MESSAGE_PARAMETER_COUNT_MISMATCH","pool.enable_ha","2","0"],"id":1}"#
    );

    // v2 with no params at all means [], so the session is missing: received is -1 as in xapi.
    let r = raw::post(
        &d.http,
        "/jsonrpc",
        br#"{"jsonrpc":"2.0","method":"session.login_with_password","id":0}"#,
    );
    assert_eq!(
        r.body,
        r#"{"jsonrpc":"2.0","error":{"code":1,"message":"MESSAGE_PARAMETER_COUNT_MISMATCH","data":["session.login_with_password","2","0"]},"id":0}"#
    );

    // Records, getters, the host's CPUs.
    let pools = call(&d, "pool.get_record", json!([s, pool_ref]));
    let master = pools["result"]["master"].as_str().unwrap().to_string();
    assert_eq!(pools["result"]["ha_enabled"], json!(false));
    assert_eq!(pools["result"]["ha_cluster_stack"], json!("xhad"));
    let host = call(&d, "host.get_record", json!([s, master]))["result"].clone();
    assert_eq!(host["enabled"], json!(true));
    assert_eq!(host["address"], json!("127.0.0.1"));
    let metrics = call(&d, "host_metrics.get_live", json!([s, host["metrics"]]));
    assert_eq!(metrics["result"], json!(true));
    let uuid = host["uuid"].as_str().unwrap();
    assert_eq!(
        call(&d, "host.get_by_uuid", json!([s, uuid]))["result"],
        json!(master)
    );
    assert_eq!(
        call(&d, "host.get_uuid", json!([s, master]))["result"],
        json!(uuid)
    );
    let by_name = call(&d, "host.get_by_name_label", json!([s, host["name_label"]]));
    assert_eq!(by_name["result"], json!([master]));
    assert_eq!(
        call(&d, "session.get_this_host", json!([s, s]))["result"],
        json!(master)
    );
    let user = call(&d, "session.get_this_user", json!([s, s]))["result"].clone();
    assert_eq!(
        call(&d, "user.get_short_name", json!([s, user]))["result"],
        json!("root")
    );

    // Errors carry xapi's parameters.
    let e = call(&d, "host.get_by_uuid", json!([s, "deadbeef"]));
    assert_eq!(
        e["error"],
        json!({"code":1,"message":"UUID_INVALID","data":["host","deadbeef"]})
    );
    let e = call(&d, "VM.get_record", json!([s, "OpaqueRef:nope"]));
    assert_eq!(e["error"]["data"], json!(["VM", "OpaqueRef:nope"]));
    assert_eq!(e["error"]["message"], json!("HANDLE_INVALID"));
    let e = call(&d, "pool.no_such_call", json!([s]));
    assert_eq!(
        e["error"],
        json!({"code":1,"message":"MESSAGE_METHOD_UNKNOWN","data":["pool.no_such_call"]})
    );
    let e = call(&d, "pool.get_record", json!([s]));
    assert_eq!(e["error"]["data"], json!(["pool.get_record", "1", "0"]));

    // A bad password is refused with xapi's parameters.
    let e = rpc(
        &d,
        json!({"jsonrpc":"2.0","method":"session.login_with_password","params":["root","wrong"],"id":5}),
    );
    assert_eq!(
        e.to_string(),
        r#"{"jsonrpc":"2.0","error":{"code":1,"message":"SESSION_AUTHENTICATION_FAILED","data":["root","Authentication failure"]},"id":5}"#
    );
    assert!(d.log().contains("failed login"), "failed logins are logged");

    // Logout ends the session.
    assert_eq!(call(&d, "session.logout", json!([s]))["result"], json!(""));
    let e = call(&d, "pool.get_all", json!([s]));
    assert_eq!(
        e["error"],
        json!({"code":1,"message":"SESSION_INVALID","data":[s]})
    );
}

#[test]
fn xml_rpc_answers_in_xapis_shapes_and_sessions_cross_protocols() {
    let d = TestDaemon::start();
    // Log in over XML-RPC ...
    let r = xml_call(&d, "session.login_with_password", &["root", PASSWORD]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/xml"));
    let s = r
        .body
        .split("<value>OpaqueRef:")
        .nth(1)
        .unwrap()
        .split("</value>")
        .next()
        .unwrap();
    let s = format!("OpaqueRef:{s}");
    // ... use the session over JSON-RPC ...
    assert!(call(&d, "pool.get_all", json!([s]))["result"].is_array());
    // ... and log out over XML-RPC on /RPC2.
    let body = format!("<?xml version=\"1.0\"?><methodCall><methodName>session.logout</methodName><params><param><value><string>{s}</string></value></param></params></methodCall>");
    let r = raw::post(&d.http, "/RPC2", body.as_bytes());
    assert_eq!(
        r.body,
        "<?xml version=\"1.0\"?><methodResponse><params><param><value><struct><member><name>Status</name><value>Success</value></member><member><name>Value</name><value></value></member></struct></value></param></params></methodResponse>"
    );

    // Reference case 22, verbatim.
    let s = login(&d);
    let r = xml_call(&d, "pool.disable_ha", &[&s]);
    assert_eq!(
        r.body,
        "<?xml version=\"1.0\"?><methodResponse><params><param><value><struct><member><name>Status</name><value>Failure</value></member><member><name>ErrorDescription</name><value><array><data><value>HA_NOT_ENABLED</value></data></array></value></member></struct></value></param></params></methodResponse>"
    );
    // Ints are untyped decimal text, bools are typed.
    let pool = call(&d, "pool.get_all", json!([s]))["result"][0]
        .as_str()
        .unwrap()
        .to_string();
    let r = xml_call(&d, "pool.get_ha_host_failures_to_tolerate", &[&s, &pool]);
    assert!(
        r.body.contains("<name>Value</name><value>0</value>"),
        "{}",
        r.body
    );
    let r = xml_call(&d, "pool.get_ha_enabled", &[&s, &pool]);
    assert!(
        r.body.contains("<value><boolean>0</boolean></value>"),
        "{}",
        r.body
    );
    // An int parameter sent as untyped text is accepted.
    let r = xml_call(
        &d,
        "pool.set_ha_host_failures_to_tolerate",
        &[&s, &pool, "1"],
    );
    assert!(r.body.contains("Success"), "{}", r.body);
    assert_eq!(
        call(
            &d,
            "pool.get_ha_host_failures_to_tolerate",
            json!([s, pool])
        )["result"],
        json!(1)
    );
}

/// XML 1.0's `Char` production: what a strict XML-RPC client accepts in a document.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// A response a strict XML parser reads: only XML characters, and well formed.
fn assert_strict_xml(body: &str) {
    assert!(
        body.chars().all(is_xml_char),
        "a non-XML character: {body:?}"
    );
    let mut reader = quick_xml::Reader::from_str(body);
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(_) => {}
            Err(e) => panic!("{e}: {body:?}"),
        }
    }
}

/// A string set over JSON-RPC (which can carry any character) is cut at its first character
/// XML 1.0 cannot carry, as xapi's database cuts it, so XML-RPC reads stay parsable; the same
/// holds for map keys and values, for creations, and for strings that arrive over XML-RPC.
#[test]
fn strings_are_stored_up_to_their_first_character_xml_cannot_carry() {
    let d = TestDaemon::start();
    let s = login(&d);
    let ok = |method: &str, params: Json| -> Json {
        let r = call(&d, method, params);
        assert!(r.get("error").is_none(), "{method}: {r}");
        r["result"].clone()
    };
    let pool = ok("pool.get_all", json!([s]))[0].clone();
    ok("pool.set_name_label", json!([s, pool, "x\u{1}y\u{fffe}"]));
    assert_eq!(ok("pool.get_name_label", json!([s, pool])), json!("x"));
    ok(
        "pool.add_to_other_config",
        json!([s, pool, "k\u{2}ey", "v\u{1b}al"]),
    );
    assert_eq!(
        ok("pool.get_other_config", json!([s, pool])),
        json!({"k": "v"})
    );
    let vm = ok(
        "VM.create",
        json!([s, {"name_label": "vm\u{7}bell", "memory_static_max": "1073741824",
                   "other_config": {"a\u{1}b": "c\u{0}d"}, "tags": ["t\u{8}ag"]}]),
    );
    assert_eq!(ok("VM.get_name_label", json!([s, vm])), json!("vm"));
    assert_eq!(ok("VM.get_other_config", json!([s, vm])), json!({"a": "c"}));
    assert_eq!(ok("VM.get_tags", json!([s, vm])), json!(["t"]));

    let r = xml_call(&d, "pool.get_record", &[&s, pool.as_str().unwrap()]);
    assert_strict_xml(&r.body);
    assert!(
        r.body.contains("<name>name_label</name><value>x</value>"),
        "{}",
        r.body
    );
    let r = xml_call(&d, "VM.get_record", &[&s, vm.as_str().unwrap()]);
    assert_strict_xml(&r.body);

    // A raw control character in an XML-RPC request is cut too.
    let r = xml_call(
        &d,
        "pool.set_name_label",
        &[&s, pool.as_str().unwrap(), "xml\u{2}rpc"],
    );
    assert!(r.body.contains("Success"), "{}", r.body);
    assert_eq!(ok("pool.get_name_label", json!([s, pool])), json!("xml"));

    // An error echoing the caller's bad UUID writes the character as U+FFFD.
    let r = xml_call(&d, "VM.get_by_uuid", &[&s, "dead\u{1}beef"]);
    assert_strict_xml(&r.body);
    assert!(
        r.body.contains(
            "<value>UUID_INVALID</value><value>VM</value><value>dead\u{fffd}beef</value>"
        ),
        "{}",
        r.body
    );
}

/// Everything the store holds that the API can show, and the database generation, which
/// every write (sessions included) moves on.
fn whole_store(d: &TestDaemon, s: &str) -> Json {
    let mut all = snapshot(d, s);
    for c in ["user", "task", "VM_metrics"] {
        all.as_array_mut()
            .unwrap()
            .push(call(d, &format!("{c}.get_all_records"), json!([s]))["result"].clone());
    }
    let generation = call(d, "host.get_local_database_generation", json!([s]))["result"].clone();
    assert!(generation.is_u64(), "{generation}");
    json!({
        "classes": all,
        "own session": call(d, "session.get_record", json!([s, s]))["result"].clone(),
        "generation": generation,
    })
}

#[test]
fn hostile_requests_get_the_documented_error_and_change_nothing() {
    let d = TestDaemon::start();
    let s = login(&d);
    let before = whole_store(&d, &s);

    // Reference case 25: XML-RPC without <params> is a parse error, HTTP 500 with HTML.
    let r = raw::post(
        &d.http,
        "/",
        br#"<?xml version="1.0"?><methodCall><methodName>session.logout</methodName></methodCall>"#,
    );
    assert_eq!(r.status, 500);
    assert_eq!(r.header("content-type"), Some("text/html"));
    assert!(r.body.contains("Xmlrpc.Parse_error("), "{}", r.body);
    // Malformed JSON, and JSON without an id.
    for body in [
        &b"{\"method\": "[..],
        br#"{"method":"pool.get_all","params":[]}"#,
    ] {
        let r = raw::post(&d.http, "/jsonrpc", body);
        assert_eq!(r.status, 500);
        assert!(
            r.body.contains("Jsonrpc.Malformed_method_request"),
            "{}",
            r.body
        );
    }
    // An XML bomb is refused without expanding anything.
    let bomb = format!(
        "<?xml version=\"1.0\"?><!DOCTYPE b [<!ENTITY a \"{}\">{}]><methodCall><methodName>&e;</methodName><params/></methodCall>",
        "x".repeat(100),
        (b'b'..=b'e').map(|c| format!("<!ENTITY {} \"{}\">", c as char, format!("&{};", (c - 1) as char).repeat(10))).collect::<String>()
    );
    let r = raw::post(&d.http, "/", bomb.as_bytes());
    assert_eq!(r.status, 500);
    assert_eq!(r.header("content-type"), Some("text/html"));
    assert!(
        r.body.starts_with("<html>") && r.body.contains("Xmlrpc.Parse_error("),
        "{}",
        r.body
    );
    assert!(
        !r.body.contains(&"x".repeat(100)),
        "nothing was expanded: {}",
        r.body
    );
    // An oversized body is refused before it is parsed, on every RPC route.
    let big = vec![b' '; 5 * 1024 * 1024];
    for route in ["/jsonrpc", "/", "/RPC2"] {
        let r = raw::post(&d.http, route, &big);
        assert_eq!(r.status, 413, "{route}");
    }
    let mut big_xml = br#"<?xml version="1.0"?><methodCall><methodName>pool.set_name_label</methodName><params><param><value>"#.to_vec();
    big_xml.extend(std::iter::repeat_n(b'a', 5 * 1024 * 1024));
    big_xml.extend(b"</value></param></params></methodCall>");
    assert_eq!(raw::post(&d.http, "/", &big_xml).status, 413);
    // A missing or bogus session.
    let e = call(&d, "pool.get_all", json!([]));
    assert_eq!(e["error"]["data"], json!(["pool.get_all", "0", "-1"]));
    let e = call(&d, "pool.get_all", json!(["OpaqueRef:forged"]));
    assert_eq!(e["error"]["message"], json!("SESSION_INVALID"));
    // Setting a read-only field: there is no such setter.
    let pool = call(&d, "pool.get_all", json!([s]))["result"][0].clone();
    let e = call(&d, "pool.set_ha_enabled", json!([s, pool, true]));
    assert_eq!(e["error"]["data"], json!(["pool.set_ha_enabled"]));
    // Invalid values through real setters.
    let e = call(
        &d,
        "pool.set_ha_host_failures_to_tolerate",
        json!([s, pool, -1]),
    );
    assert_eq!(
        e["error"],
        json!({"code":1,"message":"INVALID_VALUE","data":["ha_host_failures_to_tolerate","-1"]})
    );
    let e = call(&d, "pool.set_name_label", json!([s, pool, 42]));
    assert_eq!(e["error"]["message"], json!("FIELD_TYPE_ERROR"));
    let e = call(
        &d,
        "pool.set_default_SR",
        json!([s, pool, "OpaqueRef:nosuchsr"]),
    );
    assert_eq!(e["error"]["data"], json!(["SR", "OpaqueRef:nosuchsr"]));

    assert_eq!(whole_store(&d, &s), before, "nothing changed");
    // And the daemon still serves.
    assert!(call(&d, "pool.get_all", json!([s]))["result"].is_array());
}

#[test]
fn setters_validate_like_xapi() {
    let d = TestDaemon::start();
    let s = login(&d);
    let vm = call(&d, "VM.create", json!([s, {"name_label": "web", "memory_static_max": "536870912", "power_state": "Running"}]))["result"]
        .as_str()
        .unwrap()
        .to_string();
    let rec = call(&d, "VM.get_record", json!([s, vm]))["result"].clone();
    assert_eq!(rec["name_label"], json!("web"));
    assert_eq!(rec["memory_static_max"], json!(536870912));
    assert_eq!(
        rec["power_state"],
        json!("Halted"),
        "read-only fields are not taken from the constructor"
    );

    // Reference case 14: only restart, best-effort or "".
    let e = call(&d, "VM.set_ha_restart_priority", json!([s, vm, "1"]));
    assert_eq!(
        e["error"],
        json!({"code":1,"message":"INVALID_VALUE","data":["ha_restart_priority","1"]})
    );
    for p in ["restart", "best-effort", ""] {
        assert_eq!(
            call(&d, "VM.set_ha_restart_priority", json!([s, vm, p]))["result"],
            json!("")
        );
        // Halted: "keep it running" follows the priority only once the VM runs (xapi).
        assert_eq!(
            call(&d, "VM.get_ha_always_run", json!([s, vm]))["result"],
            json!(false)
        );
    }
    call(&d, "VM.set_ha_always_run", json!([s, vm, true]));
    assert_eq!(
        call(&d, "VM.get_ha_restart_priority", json!([s, vm]))["result"],
        json!("restart")
    );
    // Maps: add, duplicate, remove.
    assert_eq!(
        call(&d, "VM.add_to_other_config", json!([s, vm, "k", "v"]))["result"],
        json!("")
    );
    let e = call(&d, "VM.add_to_other_config", json!([s, vm, "k", "w"]));
    assert_eq!(e["error"]["message"], json!("MAP_DUPLICATE_KEY"));
    assert_eq!(
        call(&d, "VM.get_other_config", json!([s, vm]))["result"],
        json!({"k": "v"})
    );
    call(&d, "VM.remove_from_other_config", json!([s, vm, "k"]));
    assert_eq!(
        call(&d, "VM.get_other_config", json!([s, vm]))["result"],
        json!({})
    );
    // Sets.
    call(&d, "VM.add_tags", json!([s, vm, "prod"]));
    call(&d, "VM.add_tags", json!([s, vm, "prod"]));
    assert_eq!(
        call(&d, "VM.get_tags", json!([s, vm]))["result"],
        json!(["prod"])
    );
    // Affinity must name a real host.
    let host = call(&d, "host.get_all", json!([s]))["result"][0].clone();
    assert_eq!(
        call(&d, "VM.set_affinity", json!([s, vm, host]))["result"],
        json!("")
    );
    let e = call(&d, "VM.set_affinity", json!([s, vm, "OpaqueRef:x"]));
    assert_eq!(e["error"]["data"], json!(["host", "OpaqueRef:x"]));
    // Host maintenance flags.
    call(&d, "host.disable", json!([s, host]));
    assert_eq!(
        call(&d, "host.get_enabled", json!([s, host]))["result"],
        json!(false)
    );
    call(&d, "host.enable", json!([s, host]));
    assert_eq!(
        call(&d, "host.get_enabled", json!([s, host]))["result"],
        json!(true)
    );
    // Emergency-mode queries on a healthy one-host pool (reference cases 7 and 11).
    assert_eq!(
        call(&d, "host.is_in_emergency_mode", json!([s]))["result"],
        json!(false)
    );
    assert_eq!(
        call(&d, "host.emergency_ha_disable", json!([s, true]))["result"],
        json!("")
    );
    let e = call(&d, "host.emergency_ha_disable", json!([s]));
    assert_eq!(e["error"]["message"], json!("HA_NOT_ENABLED"));
    assert_eq!(
        call(&d, "pool.recover_slaves", json!([s]))["result"],
        json!([])
    );
    // Memory: static_min <= dynamic_min <= dynamic_max <= static_max, on create and on set.
    let small = call(
        &d,
        "VM.create",
        json!([s, {"name_label": "small", "memory_static_max": "536870912"}]),
    )["result"]
        .clone();
    for f in ["static_max", "dynamic_max", "dynamic_min", "static_min"] {
        assert_eq!(
            call(&d, &format!("VM.get_memory_{f}"), json!([s, small]))["result"],
            json!(536870912),
            "{f}"
        );
    }
    let e = call(
        &d,
        "VM.set_memory_static_min",
        json!([s, small, "1073741824"]),
    );
    assert_eq!(
        e["error"],
        json!({"code":1,"message":"MEMORY_CONSTRAINT_VIOLATION_ORDER","data":[]})
    );
    assert_eq!(
        call(&d, "VM.get_memory_static_min", json!([s, small]))["result"],
        json!(536870912)
    );
    let before = call(&d, "VM.get_all", json!([s]))["result"].clone();
    let e = call(
        &d,
        "VM.create",
        json!([s, {"memory_static_max": "1", "memory_static_min": "2"}]),
    );
    assert_eq!(
        e["error"]["message"],
        json!("MEMORY_CONSTRAINT_VIOLATION_ORDER")
    );
    assert_eq!(
        call(&d, "VM.get_all", json!([s]))["result"],
        before,
        "a refused create leaves nothing"
    );
    call(&d, "VM.destroy", json!([s, small]));

    // Destroy.
    assert_eq!(call(&d, "VM.destroy", json!([s, vm]))["result"], json!(""));
    assert_eq!(call(&d, "VM.get_all", json!([s]))["result"], json!([]));
}

#[test]
fn host_cpus_are_this_machines() {
    let d = TestDaemon::start();
    let s = login(&d);
    let cpus = call(&d, "host_cpu.get_all_records", json!([s]))["result"]
        .as_object()
        .unwrap()
        .clone();
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap();
    let processors = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    assert_eq!(cpus.len(), processors);
    let mut numbers: Vec<i64> = cpus
        .values()
        .map(|c| c["number"].as_i64().unwrap())
        .collect();
    numbers.sort();
    assert_eq!(numbers, (0..processors as i64).collect::<Vec<_>>());
    if let Some(vendor) = cpuinfo.lines().find_map(|l| l.strip_prefix("vendor_id")) {
        let vendor = vendor.trim_start_matches([' ', '\t', ':']).trim();
        assert!(cpus.values().all(|c| c["vendor"] == json!(vendor)));
    }
    let host = call(&d, "host.get_all", json!([s]))["result"][0].clone();
    let info = call(&d, "host.get_cpu_info", json!([s, host]))["result"].clone();
    assert_eq!(info["cpu_count"], json!(processors.to_string()));
}

#[test]
fn restart_keeps_everything_and_sigterm_is_clean() {
    let mut d = TestDaemon::start();
    let s = login(&d);
    let pool = call(&d, "pool.get_all", json!([s]))["result"][0].clone();
    call(&d, "pool.set_name_label", json!([s, pool, "lab pool"]));
    let vm = call(
        &d,
        "VM.create",
        json!([s, {"name_label": "db", "order": 2}]),
    )["result"]
        .clone();
    let before = snapshot(&d, &s);

    let status = d.stop();
    assert!(
        status.success(),
        "SIGTERM exits 0, got {status}:\n{}",
        d.log()
    );
    assert!(!d.socket.exists(), "the socket is removed on a clean stop");
    assert!(d.log().contains("stopped"));

    d.restart();
    // Sessions do not survive a restart (as in xapi) ...
    assert_eq!(
        call(&d, "pool.get_all", json!([s]))["error"]["message"],
        json!("SESSION_INVALID")
    );
    // ... everything else does, including the UUIDs of the host and its CPUs.
    let s = login(&d);
    assert_eq!(call(&d, "VM.get_order", json!([s, vm]))["result"], json!(2));
    // The metrics' last_updated moves on a restart; nothing else may.
    let forget_update_time = |mut snap: Json| {
        for m in snap[3].as_object_mut().unwrap().values_mut() {
            m["last_updated"] = json!(null);
        }
        snap
    };
    let (after, before) = (
        forget_update_time(snapshot(&d, &s)),
        forget_update_time(before),
    );
    assert_eq!(after, before);
}

#[test]
fn https_and_the_unix_socket_serve_the_same_api() {
    let d = TestDaemon::start();
    let client = reqwest::blocking::Client::builder()
        .tls_danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let body = json!({"jsonrpc":"2.0","method":"session.login_with_password","params":["root", PASSWORD],"id":1});
    let r: Json = client
        .post(format!("https://{}/jsonrpc", d.https))
        .body(body.to_string())
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(r["result"].as_str().unwrap().starts_with("OpaqueRef:"));
    // The certificate was generated on first start and kept.
    assert!(d.state_dir().join("xapi-ssl.pem").exists());

    // Over the local socket the caller is root whatever password it gives.
    let out = std::process::Command::new("curl")
        .args(["-s", "--unix-socket", d.socket.to_str().unwrap(), "http://localhost/jsonrpc", "-d"])
        .arg(json!({"jsonrpc":"2.0","method":"session.login_with_password","params":["root","not the password"],"id":1}).to_string())
        .output();
    if let Ok(out) = out {
        if out.status.success() {
            let r: Json = serde_json::from_slice(&out.stdout).unwrap();
            assert!(
                r["result"].as_str().unwrap().starts_with("OpaqueRef:"),
                "{r}"
            );
            return;
        }
    }
    // Without curl, speak HTTP over the socket by hand.
    use std::io::{Read, Write};
    let mut sock = std::os::unix::net::UnixStream::connect(&d.socket).unwrap();
    let payload = json!({"jsonrpc":"2.0","method":"session.login_with_password","params":["root","nope"],"id":1}).to_string();
    write!(sock, "POST /jsonrpc HTTP/1.1\r\nhost: localhost\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{payload}", payload.len()).unwrap();
    let mut resp = String::new();
    sock.read_to_string(&mut resp).unwrap();
    assert!(resp.contains("\"result\":\"OpaqueRef:"), "{resp}");
}

/// `OpaqueRef:` and a UUID, as xapi's refs are.
fn is_ref(v: &Json) -> bool {
    v.as_str()
        .and_then(|s| s.strip_prefix("OpaqueRef:"))
        .is_some_and(|u| is_uuid(&json!(u)))
}

/// 8-4-4-4-12 lower-case hex digits.
fn is_uuid(v: &Json) -> bool {
    let Some(s) = v.as_str() else { return false };
    let groups: Vec<&str> = s.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')))
}

/// The logical CPUs /proc/cpuinfo lists.
fn logical_cpus() -> usize {
    std::fs::read_to_string("/proc/cpuinfo")
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count()
}

/// The SDK test's calls, made from a raw HTTP client in both JSON-RPC dialects; every answer is
/// compared with the exact envelope of its dialect.
#[test]
fn the_same_calls_in_json_rpc_v1_and_v2() {
    let d = TestDaemon::start();
    for v2 in [false, true] {
        let body = |method: &str, params: Json, id: u64| {
            let mut req = serde_json::Map::new();
            if v2 {
                req.insert("jsonrpc".into(), json!("2.0"));
            }
            req.insert("method".into(), json!(method));
            req.insert("params".into(), params);
            req.insert("id".into(), json!(id));
            Json::Object(req).to_string()
        };
        let ok = |method: &str, params: Json| -> Json {
            let r = raw::post(&d.http, "/jsonrpc", body(method, params, 7).as_bytes());
            let doc: Json = serde_json::from_str(&r.body).unwrap();
            let result = doc["result"].clone();
            let expected = if v2 {
                format!(r#"{{"jsonrpc":"2.0","result":{result},"id":7}}"#)
            } else {
                format!(r#"{{"result":{result},"error":null,"id":7}}"#)
            };
            assert_eq!(r.body, expected, "{method}");
            result
        };
        let err = |method: &str, params: Json, code: &str, data: Json| {
            let r = raw::post(&d.http, "/jsonrpc", body(method, params, 9).as_bytes());
            let expected = if v2 {
                json!({"jsonrpc":"2.0","error":{"code":1,"message":code,"data":data},"id":9})
                    .to_string()
            } else {
                let mut desc = vec![json!(code)];
                desc.extend(data.as_array().unwrap().iter().cloned());
                json!({"result":null,"error":desc,"id":9}).to_string()
            };
            assert_eq!(r.body, expected, "{method}");
        };
        let s = ok(
            "session.login_with_password",
            json!(["root", PASSWORD, "1.0", "raw"]),
        );
        assert!(is_ref(&s), "a login answers a session ref: {s}");
        let pool = ok("pool.get_all", json!([s]));
        assert_eq!(pool.as_array().map(Vec::len), Some(1), "{pool}");
        let pool = pool[0].clone();
        assert!(is_ref(&pool), "{pool}");
        let hosts = ok("host.get_all_records", json!([s]));
        let hosts = hosts.as_object().unwrap();
        assert_eq!(hosts.len(), 1);
        let (host, host_rec) = hosts.iter().next().unwrap();
        assert!(is_ref(&json!(host)), "{host}");
        assert!(is_uuid(&host_rec["uuid"]), "{host_rec}");
        // The pool record: HA off, every HA field at its documented default (reference §5.1;
        // ha_cluster_stack is xhad, as xapi creates the pool), this host its master.
        let record = ok("pool.get_record", json!([s, pool]));
        for (field, expected) in [
            ("master", json!(host)),
            ("ha_enabled", json!(false)),
            ("ha_configuration", json!({})),
            ("ha_statefiles", json!([])),
            ("ha_host_failures_to_tolerate", json!(0)),
            ("ha_plan_exists_for", json!(0)),
            ("ha_allow_overcommit", json!(false)),
            ("ha_overcommitted", json!(false)),
            ("ha_cluster_stack", json!("xhad")),
            ("ha_reboot_vm_on_internal_shutdown", json!(true)),
        ] {
            assert_eq!(record[field], expected, "pool.{field} in {record}");
        }
        assert!(is_uuid(&record["uuid"]), "{record}");
        // One host_cpu per logical CPU of this machine, each on this host.
        let cpus = ok("host_cpu.get_all_records", json!([s]));
        let cpus = cpus.as_object().unwrap();
        assert_eq!(cpus.len(), logical_cpus());
        assert!(cpus.values().all(|c| c["host"] == json!(host)), "{cpus:?}");
        // A setter answers void, "", and the getter then shows the new value.
        let label = format!("v2={v2}");
        assert_eq!(
            ok("pool.set_name_label", json!([s, pool, label])),
            json!("")
        );
        assert_eq!(ok("pool.get_name_label", json!([s, pool])), json!(label));
        err(
            "session.login_with_password",
            json!(["root", "bad"]),
            "SESSION_AUTHENTICATION_FAILED",
            json!(["root", "Authentication failure"]),
        );
        err(
            "pool.nonexistent",
            json!([s]),
            "MESSAGE_METHOD_UNKNOWN",
            json!(["pool.nonexistent"]),
        );
        err(
            "pool.get_record",
            json!([s]),
            "MESSAGE_PARAMETER_COUNT_MISMATCH",
            json!(["pool.get_record", "1", "0"]),
        );
        err(
            "host.get_by_uuid",
            json!([s, "deadbeef"]),
            "UUID_INVALID",
            json!(["host", "deadbeef"]),
        );
        assert_eq!(ok("session.logout", json!([s])), json!(""));
        err("pool.get_all", json!([s]), "SESSION_INVALID", json!([s]));
    }
}

fn login_as(d: &TestDaemon, password: &str) -> Json {
    rpc(
        d,
        json!({"jsonrpc":"2.0","method":"session.login_with_password","params":["root", password],"id":1}),
    )
}

fn mode_of(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn root_password_from_a_file() {
    let secrets = tempfile::tempdir().unwrap();
    let file = secrets.path().join("pw");
    std::fs::write(&file, "from-the-file\nignored second line\n").unwrap();
    let d = TestDaemon::start_prepared(
        tempfile::tempdir().unwrap(),
        &["--root-password-file", file.to_str().unwrap()],
    );
    assert!(is_ref(&login_as(&d, "from-the-file")["result"]));
    assert_eq!(
        login_as(&d, "ignored second line")["error"]["message"],
        json!("SESSION_AUTHENTICATION_FAILED")
    );
    assert!(
        !d.state_dir().join("root-password").exists(),
        "nothing generated"
    );
}

#[test]
fn a_generated_root_password_is_written_0600_and_named_in_the_log() {
    let mut d = TestDaemon::start_prepared(tempfile::tempdir().unwrap(), &[]);
    let path = d.state_dir().join("root-password");
    assert_eq!(mode_of(&path), 0o600);
    let text = std::fs::read_to_string(&path).unwrap();
    let password = text.trim_end_matches('\n');
    assert!(!password.is_empty() && !password.contains('\n'), "{text:?}");
    let log = d.log();
    assert!(
        log.lines()
            .any(|l| l.contains("generated a root password")
                && l.contains(&path.display().to_string())),
        "{log}"
    );
    assert!(is_ref(&login_as(&d, password)["result"]));
    // A restart neither regenerates nor forgets it.
    assert!(d.stop().success());
    d.restart();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    assert!(is_ref(&login_as(&d, password)["result"]));
    assert!(
        !d.log().contains("generated a root password"),
        "{}",
        d.log()
    );
}

/// A first start that wrote the generated password but stopped before storing root's
/// credential: the next start uses that password instead of failing on the existing file.
#[test]
fn a_first_start_interrupted_after_writing_the_password_file_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("root-password");
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .unwrap();
        writeln!(f, "written-before-the-crash").unwrap();
    }
    let d = TestDaemon::start_prepared(dir, &[]);
    assert!(is_ref(&login_as(&d, "written-before-the-crash")["result"]));
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "written-before-the-crash\n"
    );
    // A file left empty (created, then the daemon stopped before writing) held nothing anyone
    // could have read: a new password replaces it.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("root-password");
    std::fs::write(&path, "").unwrap();
    let d = TestDaemon::start_prepared(dir, &[]);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(is_ref(&login_as(&d, text.trim_end())["result"]), "{text:?}");
    assert_eq!(mode_of(&path), 0o600);
}

/// The pool database holds the local users' password hashes: it is created 0600, and an
/// existing database or state directory others can read is tightened at start, with a log line.
#[test]
fn the_pool_database_and_state_directory_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let mut d = TestDaemon::start();
    let db = d.state_dir().join("pool.db");
    assert_eq!(mode_of(&db), 0o600);
    assert_eq!(mode_of(d.state_dir()), 0o700);
    assert!(d.stop().success());
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(d.state_dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
    d.restart();
    assert_eq!(mode_of(&db), 0o600);
    assert_eq!(mode_of(d.state_dir()), 0o700);
    let log = d.log();
    assert!(
        log.contains("the pool database was mode 644; made it 0600"),
        "{log}"
    );
    assert!(
        log.contains("the state directory was mode 755; made it 700"),
        "{log}"
    );
    // Nothing was lost on the way.
    assert!(is_ref(&login_as(&d, PASSWORD)["result"]));
}

/// The local socket trusts its caller as root: it appears at its path already 0600 (bound in
/// a private directory and renamed into place, so it never exists under the umask's mode),
/// leaves nothing behind, and replaces the stale socket of a killed daemon.
#[test]
fn the_local_socket_is_only_ever_its_owners() {
    use std::os::unix::fs::FileTypeExt;
    let mut d = TestDaemon::start();
    let is_socket = |d: &TestDaemon| {
        std::fs::metadata(&d.socket)
            .unwrap()
            .file_type()
            .is_socket()
    };
    assert!(is_socket(&d));
    assert_eq!(mode_of(&d.socket), 0o600);
    let leftovers = |d: &TestDaemon| -> Vec<String> {
        std::fs::read_dir(d.state_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".xapid-"))
            .collect()
    };
    assert_eq!(leftovers(&d), Vec::<String>::new());
    d.kill9();
    assert!(d.socket.exists(), "a killed daemon leaves its socket");
    d.restart();
    assert!(is_socket(&d));
    assert_eq!(mode_of(&d.socket), 0o600);
    assert_eq!(leftovers(&d), Vec::<String>::new());
    let r = raw::post_unix(
        &d.socket,
        "/jsonrpc",
        json!({"jsonrpc":"2.0","method":"session.login_with_password","params":["root","any"],"id":1})
            .to_string()
            .as_bytes(),
    );
    assert!(r.body.contains("OpaqueRef:"), "{}", r.body);
}

/// The certificate the HTTPS listener presents, as DER.
fn served_certificate(d: &TestDaemon) -> Vec<u8> {
    let client = reqwest::blocking::Client::builder()
        .tls_danger_accept_invalid_certs(true)
        .tls_info(true)
        .build()
        .unwrap();
    let r = client
        .post(format!("https://{}/jsonrpc", d.https))
        .body(json!({"jsonrpc":"2.0","method":"pool.get_all","params":["x"],"id":1}).to_string())
        .send()
        .unwrap();
    r.extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|i| i.peer_certificate())
        .expect("a TLS peer certificate")
        .to_vec()
}

#[test]
fn the_tls_certificate_survives_a_restart() {
    let mut d = TestDaemon::start();
    let first = served_certificate(&d);
    let pem = std::fs::read(d.state_dir().join("xapi-ssl.pem")).unwrap();
    assert!(!first.is_empty());
    assert!(d.stop().success());
    d.restart();
    assert_eq!(
        served_certificate(&d),
        first,
        "the same certificate after a restart"
    );
    assert_eq!(
        std::fs::read(d.state_dir().join("xapi-ssl.pem")).unwrap(),
        pem
    );
    assert!(!d.log().contains("generated a self-signed"), "{}", d.log());
}

/// An interrupted first start: certificate files left empty (by a version that wrote them in
/// place) are generated again, with a warning; a key left without its certificate (a start
/// stopped between the two renames) gets a certificate and is kept.
#[test]
fn an_interrupted_first_start_leaves_no_unusable_certificate() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("xapi-ssl.pem"), "").unwrap();
    std::fs::write(dir.path().join("xapi-ssl.key"), "").unwrap();
    let mut d = TestDaemon::start_prepared(dir, &[]);
    assert!(!served_certificate(&d).is_empty());
    for file in ["xapi-ssl.pem", "xapi-ssl.key"] {
        let path = d.state_dir().join(file);
        assert!(std::fs::metadata(&path).unwrap().len() > 0, "{file}");
        assert_eq!(mode_of(&path), 0o600, "{file}");
        assert!(!d.state_dir().join(format!(".{file}.partial")).exists());
    }
    assert!(
        d.log().contains("treated as missing") && d.log().contains("generated a self-signed"),
        "{}",
        d.log()
    );
    let key = std::fs::read(d.state_dir().join("xapi-ssl.key")).unwrap();
    assert!(d.stop().success());
    std::fs::remove_file(d.state_dir().join("xapi-ssl.pem")).unwrap();
    d.restart();
    assert!(!served_certificate(&d).is_empty());
    assert_eq!(
        std::fs::read(d.state_dir().join("xapi-ssl.key")).unwrap(),
        key
    );
    assert!(
        d.log().contains("the key had no certificate"),
        "{}",
        d.log()
    );
}

/// A certificate or key file with content the daemon cannot use may be the operator's own: it
/// is never replaced; the daemon refuses to start and names it.
#[test]
fn an_unusable_certificate_with_content_refuses_the_start() {
    let good = TestDaemon::start();
    let good_key = std::fs::read(good.state_dir().join("xapi-ssl.key")).unwrap();
    let good_cert = std::fs::read(good.state_dir().join("xapi-ssl.pem")).unwrap();
    drop(good);
    let cases: [(&[u8], &[u8], &str); 4] = [
        (
            b"not a certificate\n",
            &good_key,
            "xapi-ssl.pem holds no PEM certificate",
        ),
        (
            &good_cert,
            b"not a key\n",
            "xapi-ssl.key holds no PEM private key",
        ),
        (&good_cert, b"", "xapi-ssl.key is missing or empty"),
        (
            b"",
            b"not a key\n",
            "xapi-ssl.key holds no usable private key",
        ),
    ];
    for (cert, key, wanted) in cases {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("xapi-ssl.pem"), cert).unwrap();
        std::fs::write(dir.path().join("xapi-ssl.key"), key).unwrap();
        let (status, log) = common::start_refused(dir.path(), &[]);
        assert!(!status.success(), "{log}");
        assert!(log.contains(wanted), "{wanted}: {log}");
        assert_eq!(
            std::fs::read(dir.path().join("xapi-ssl.pem")).unwrap(),
            cert
        );
        assert_eq!(std::fs::read(dir.path().join("xapi-ssl.key")).unwrap(), key);
        assert!(
            !dir.path().join("pool.db").exists(),
            "refused before opening the database"
        );
    }
}

/// A `--cpuinfo` file in which no CPU can be found refuses the start, naming the file, instead
/// of making a host without CPUs; a real one is used.
#[test]
fn a_cpuinfo_file_without_cpus_refuses_the_start() {
    let files = tempfile::tempdir().unwrap();
    let garbage = files.path().join("garbage.txt");
    std::fs::write(&garbage, "this is not\na cpuinfo: file\n").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (status, log) =
        common::start_refused(dir.path(), &["--cpuinfo", garbage.to_str().unwrap()]);
    assert!(!status.success(), "{log}");
    assert!(
        log.contains(&format!("{}: no CPU found", garbage.display())),
        "{log}"
    );
    assert!(
        !dir.path().join("pool.db").exists(),
        "refused before opening the database"
    );

    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/cpuinfo/amd-epyc-4cpu.txt"
    );
    let d = TestDaemon::start_with(&["--cpuinfo", fixture]);
    let s = login(&d);
    let cpus = call(&d, "host_cpu.get_all", json!([s]))["result"].clone();
    assert_eq!(cpus.as_array().map(Vec::len), Some(4), "{cpus}");
}

/// MemTotal of /proc/meminfo, in bytes.
fn mem_total() -> i64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let kib: i64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    kib * 1024
}

#[test]
fn host_memory_is_meminfos_unless_configured() {
    let mut d = TestDaemon::start();
    let memory = |d: &TestDaemon| {
        let s = login(d);
        let all = call(d, "host_metrics.get_all_records", json!([s]))["result"].clone();
        let all = all.as_object().unwrap().clone();
        assert_eq!(all.len(), 1, "{all:?}");
        all.values().next().unwrap()["memory_total"].clone()
    };
    assert_eq!(memory(&d), json!(mem_total()));
    assert!(d.stop().success());
    d.restart_with("--memory-total", "68719476736");
    assert_eq!(memory(&d), json!(68719476736_i64));
    // The same override from the config file.
    let conf_dir = tempfile::tempdir().unwrap();
    let conf = conf_dir.path().join("xapid.toml");
    std::fs::write(&conf, "memory_total = 34359738368\n").unwrap();
    let d = TestDaemon::start_with(&["--config", conf.to_str().unwrap()]);
    assert_eq!(memory(&d), json!(34359738368_i64));
}

/// A failed login is delayed and logged, and the delay holds up no one else: a good login
/// made while a bad one waits is answered first. (An order, not a duration.)
#[test]
fn a_delayed_failed_login_holds_up_no_one() {
    let d = TestDaemon::start_with(&["--auth-failure-delay-ms", "600000"]);
    let addr = d.http.clone();
    let bad = std::thread::spawn(move || {
        let body = json!({"jsonrpc":"2.0","method":"session.login_with_password","params":["root","wrong"],"id":1});
        raw::post(&addr, "/jsonrpc", body.to_string().as_bytes())
    });
    common::wait_for(
        "the failed login to be logged",
        std::time::Duration::from_secs(30),
        || d.log().contains("failed login"),
    );
    let line = d
        .log()
        .lines()
        .find(|l| l.contains("failed login"))
        .unwrap()
        .to_string();
    assert!(
        line.contains("root") && line.contains("answering after 600s"),
        "{line}"
    );
    // The bad login is still waiting; a good one is answered meanwhile.
    assert!(is_ref(&login_as(&d, PASSWORD)["result"]));
    assert!(
        !bad.is_finished(),
        "the failed login answered before its delay"
    );
    drop(d);
    let _ = bad.join();
}

/// `Async.` calls answer a task at once; the task tells how the call went, as xapi fills it in.
#[test]
fn async_calls_answer_a_task_that_tells_the_outcome() {
    let d = TestDaemon::start_with(&["--memory-total", "8589934592"]);
    let s = login(&d);
    let result = |r: Json| -> Json {
        assert!(r.get("error").is_none(), "{r}");
        r["result"].clone()
    };
    let tasks = |s: &str| result(call(&d, "task.get_all", json!([s])));
    let done = |task: &Json| -> Json {
        common::wait_for(
            "the task to finish",
            std::time::Duration::from_secs(30),
            || result(call(&d, "task.get_status", json!([s, task]))) != json!("pending"),
        );
        result(call(&d, "task.get_record", json!([s, task])))
    };
    let host = result(call(&d, "host.get_all", json!([s])))[0].clone();

    // A call with a result: the task's result is the value's XML-RPC text.
    let task = result(call(
        &d,
        "Async.VM.create",
        json!([s, {"name_label": "async-vm", "memory_static_max": "1073741824"}]),
    ));
    assert!(is_ref(&task), "{task}");
    let rec = done(&task);
    let vm = result(call(&d, "VM.get_by_name_label", json!([s, "async-vm"])))[0].clone();
    assert!(is_ref(&vm));
    assert_eq!(rec["status"], json!("success"), "{rec}");
    assert_eq!(
        rec["result"],
        json!(format!("<value>{}</value>", vm.as_str().unwrap()))
    );
    assert_eq!(rec["name_label"], json!("Async.VM.create"));
    assert_eq!(rec["progress"], json!(1.0));
    assert_eq!(rec["error_info"], json!([]));
    assert_eq!(rec["resident_on"], host);
    assert!(is_uuid(&rec["uuid"]));
    for time in ["created", "finished"] {
        let t = rec[time].as_str().unwrap();
        assert!(
            t.len() == 18 && t.ends_with('Z') && !t.starts_with("1970"),
            "{time}: {t}"
        );
    }
    // A void call: result "", and its effect is there.
    let task = result(call(&d, "Async.VM.start", json!([s, vm, false, false])));
    let rec = done(&task);
    assert_eq!(
        (&rec["status"], &rec["result"]),
        (&json!("success"), &json!("")),
        "{rec}"
    );
    assert_eq!(
        result(call(&d, "VM.get_power_state", json!([s, vm]))),
        json!("Running")
    );
    // A failing call: the same error the synchronous call gives, in error_info.
    let task = result(call(&d, "Async.VM.start", json!([s, vm, false, false])));
    let rec = done(&task);
    let sync = call(&d, "VM.start", json!([s, vm, false, false]))["error"].clone();
    assert_eq!(sync["message"], json!("VM_BAD_POWER_STATE"), "{sync}");
    let mut expected = vec![sync["message"].clone()];
    expected.extend(sync["data"].as_array().unwrap().iter().cloned());
    assert_eq!(rec["status"], json!("failure"), "{rec}");
    assert_eq!(rec["error_info"], json!(expected));
    assert_eq!(rec["progress"], json!(1.0));
    let failed = task;

    // What fails the checks fails at once, naming the async method, and makes no task.
    let before = tasks(&s);
    let e = call(&d, "Async.pool.nonexistent", json!([s]))["error"].clone();
    assert_eq!(e["data"], json!(["Async.pool.nonexistent"]), "{e}");
    for m in ["Async.session.login_with_password", "Async.VM.get_record"] {
        let e = call(&d, m, json!([s, vm]))["error"].clone();
        assert_eq!(e["message"], json!("MESSAGE_METHOD_UNKNOWN"), "{m}: {e}");
    }
    let e = call(&d, "Async.VM.start", json!([s, vm]))["error"].clone();
    assert_eq!(e["data"], json!(["Async.VM.start", "3", "1"]), "{e}");
    let e = call(
        &d,
        "Async.VM.start",
        json!(["OpaqueRef:forged", vm, false, false]),
    )["error"]
        .clone();
    assert_eq!(e["message"], json!("SESSION_INVALID"));
    result(call(
        &d,
        "user.create_local",
        json!([s, "bob", "bob-pw", "read-only"]),
    ));
    let bob = result(rpc(
        &d,
        json!({"jsonrpc":"2.0","method":"session.login_with_password","params":["bob","bob-pw"],"id":1}),
    ));
    let bob = bob.as_str().unwrap();
    let e = call(&d, "Async.VM.hard_shutdown", json!([bob, vm]))["error"].clone();
    assert_eq!(e["message"], json!("RBAC_PERMISSION_DENIED"), "{e}");
    assert_eq!(tasks(&s), before, "no task for a refused call");
    assert_eq!(
        result(call(&d, "VM.get_power_state", json!([s, vm]))),
        json!("Running")
    );

    // A read-only user's own task runs with its role; it may destroy its own task, not root's.
    let own = result(call(
        &d,
        "Async.host.get_local_database_generation",
        json!([bob]),
    ));
    let rec = done(&own);
    assert_eq!(rec["status"], json!("success"), "{rec}");
    let text = rec["result"].as_str().unwrap();
    let generation: u64 = text
        .strip_prefix("<value>")
        .and_then(|t| t.strip_suffix("</value>"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("an untyped int: {text}"));
    assert!(generation > 0);
    let e = call(&d, "task.destroy", json!([bob, failed]))["error"].clone();
    assert_eq!(e["message"], json!("RBAC_PERMISSION_DENIED"), "{e}");
    result(call(&d, "task.destroy", json!([bob, own])));
    result(call(&d, "task.destroy", json!([s, failed])));
    let left = tasks(&s);
    assert!(
        !left.as_array().unwrap().contains(&failed) && !left.as_array().unwrap().contains(&own)
    );
    let e = call(&d, "task.get_record", json!([s, failed]))["error"].clone();
    assert_eq!(e["data"], json!(["task", failed]));
}
