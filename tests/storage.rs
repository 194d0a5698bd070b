//! Storage across a two-host pool: a shared file SR with a PBD per host, VDIs as sparse files,
//! a block SR with VDIs as non-overlapping regions, and refusals that create nothing.

mod common;

use common::{raw, TestDaemon, PASSWORD};
use serde_json::{json, Value as Json};

fn local(d: &TestDaemon, method: &str, params: Json) -> Json {
    let body = json!({"jsonrpc":"2.0","method":method,"params":params,"id":1}).to_string();
    serde_json::from_str(&raw::post_unix(&d.socket, "/jsonrpc", body.as_bytes()).body).unwrap()
}

fn ok(r: Json) -> Json {
    assert!(r.get("error").is_none(), "{r}");
    r["result"].clone()
}

fn code(r: Json) -> String {
    r["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("expected an error: {r}"))
        .to_string()
}

#[test]
fn shared_and_block_storage() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let master = TestDaemon::start_at("127.0.0.51", port, &[]);
    let member = TestDaemon::start_at("127.0.0.52", port, &[]);
    let ms = ok(local(
        &member,
        "session.login_with_password",
        json!(["root", ""]),
    ));
    ok(local(
        &member,
        "pool.join",
        json!([ms, "127.0.0.51", "root", PASSWORD]),
    ));
    // Sessions from before the join belonged to the member's old pool.
    assert_eq!(
        code(local(&member, "pool.get_all", json!([ms]))),
        "SESSION_INVALID"
    );
    let ms = ok(local(
        &member,
        "session.login_with_password",
        json!(["root", ""]),
    ));
    let s = ok(local(
        &master,
        "session.login_with_password",
        json!(["root", ""]),
    ));
    let here = ok(local(&master, "pool.get_all_records", json!([s])))
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap()["master"]
        .clone();
    let count = |class: &str| {
        ok(local(&master, &format!("{class}.get_all"), json!([s])))
            .as_array()
            .unwrap()
            .len()
    };

    // A shared file SR: one PBD per host, all attached.
    let nfs = tempfile::tempdir().unwrap();
    let sr = ok(local(
        &master,
        "SR.create",
        json!([s, here, {"location": nfs.path()}, 0, "shared-nfs", "", "file", "", true, {}]),
    ));
    let pbds = ok(local(&master, "SR.get_PBDs", json!([s, sr])));
    assert_eq!(pbds.as_array().unwrap().len(), 2);
    for p in pbds.as_array().unwrap() {
        assert_eq!(
            ok(local(&master, "PBD.get_currently_attached", json!([s, p]))),
            json!(true)
        );
    }
    assert!(
        ok(local(&master, "SR.get_physical_size", json!([s, sr])))
            .as_i64()
            .unwrap()
            > 0
    );

    // VDIs are sparse files of their virtual size.
    let vdi = ok(local(
        &member,
        "VDI.create",
        json!([ms, {"SR": sr, "virtual_size": "1073741824", "name_label": "disk", "type": "user"}]),
    ));
    let location = ok(local(&master, "VDI.get_location", json!([s, vdi])));
    assert_eq!(
        std::fs::metadata(location.as_str().unwrap()).unwrap().len(),
        1 << 30
    );
    assert_eq!(
        ok(local(&master, "SR.get_virtual_allocation", json!([s, sr]))),
        json!(1i64 << 30)
    );
    // Not empty: cannot be destroyed; attached: cannot be forgotten.
    assert_eq!(
        code(local(&master, "SR.destroy", json!([s, sr]))),
        "SR_NOT_EMPTY"
    );
    assert_eq!(
        code(local(&master, "SR.forget", json!([s, sr]))),
        "SR_HAS_PBD"
    );
    ok(local(&master, "VDI.destroy", json!([s, vdi])));
    assert!(!std::path::Path::new(location.as_str().unwrap()).exists());
    for p in pbds.as_array().unwrap() {
        ok(local(&master, "PBD.unplug", json!([s, p])));
    }
    ok(local(&master, "SR.forget", json!([s, sr])));
    assert_eq!((count("SR"), count("PBD")), (0, 0));

    // A block SR on a 64 MiB device: regions never overlap and the SR fills up.
    let dev_dir = tempfile::tempdir().unwrap();
    let dev = dev_dir.path().join("disk");
    std::fs::File::create(&dev)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    let block = ok(local(
        &master,
        "SR.create",
        json!([s, here, {"device": dev}, 0, "MGMT-HA", "", "block", "", false, {}]),
    ));
    assert_eq!(
        ok(local(&master, "SR.get_physical_size", json!([s, block]))),
        json!(64i64 << 20)
    );
    let mut offsets = vec![];
    for name in ["statefile", "metadata"] {
        let v = ok(local(
            &master,
            "VDI.create",
            json!([s, {"SR": block, "virtual_size": (20i64 << 20).to_string(), "name_label": name}]),
        ));
        let sm = ok(local(&master, "VDI.get_sm_config", json!([s, v])));
        offsets.push(sm["offset"].as_str().unwrap().parse::<i64>().unwrap());
    }
    assert_eq!(offsets, [0, 20 << 20]);
    let full = local(
        &master,
        "VDI.create",
        json!([s, {"SR": block, "virtual_size": (30i64 << 20).to_string()}]),
    );
    assert_eq!(
        full["error"],
        json!({"code":1,"message":"SR_FULL","data":[(30i64 << 20).to_string(), (64i64 << 20).to_string()]})
    );

    // Refusals create nothing.
    let before = (count("SR"), count("PBD"), count("VDI"));
    let r = local(
        &master,
        "SR.create",
        json!([s, here, {"location": "/nonexistent/xenha"}, 0, "x", "", "file", "", true, {}]),
    );
    assert_eq!(code(r), "SR_BACKEND_FAILURE");
    assert_eq!(
        code(local(
            &master,
            "SR.create",
            json!([s, here, {}, 0, "x", "", "nfs9", "", true, {}])
        )),
        "SR_UNKNOWN_DRIVER"
    );
    assert_eq!(
        code(local(
            &master,
            "VDI.create",
            json!([s, {"SR": block, "virtual_size": "0"}])
        )),
        "INVALID_VALUE"
    );
    assert_eq!((count("SR"), count("PBD"), count("VDI")), before);
}
