//! Codec tests: every verbatim example of the reference's wire section, hostile inputs, and
//! property round trips.

use indexmap::IndexMap;
use proptest::prelude::*;
use serde_json::json;

use super::{jsonrpc, xmlrpc};
use crate::model::{ApiError, Value};

const OK_RESPONSE: &str = r#"<?xml version="1.0"?><methodResponse><params><param><value><struct><member><name>Status</name><value>Success</value></member><member><name>Value</name><value>OpaqueRef:c90cd28f-37ec-4dbf-88e6-f697ccb28b39</value></member></struct></value></param></params></methodResponse>"#;
const HA_NOT_ENABLED: &str = r#"<?xml version="1.0"?><methodResponse><params><param><value><struct><member><name>Status</name><value>Failure</value></member><member><name>ErrorDescription</name><value><array><data><value>HA_NOT_ENABLED</value></data></array></value></member></struct></value></param></params></methodResponse>"#;

#[test]
fn xml_login_request_from_the_docs() {
    let body = r#"<?xml version='1.0'?>
<methodCall>
    <methodName>session.login_with_password</methodName>
    <params>
        <param><value><string>user</string></value></param>
        <param><value><string>passwd</string></value></param>
        <param><value><string>version</string></value></param>
        <param><value><string>originator</string></value></param>
    </params>
</methodCall>"#;
    let call = xmlrpc::parse_call(body.as_bytes()).unwrap();
    assert_eq!(call.method, "session.login_with_password");
    assert_eq!(
        call.params,
        ["user", "passwd", "version", "originator"]
            .map(Value::str)
            .to_vec()
    );
}

#[test]
fn xml_responses_are_byte_identical_to_xapi() {
    let ok = Ok(Value::str("OpaqueRef:c90cd28f-37ec-4dbf-88e6-f697ccb28b39"));
    assert_eq!(xmlrpc::encode_response(&ok), OK_RESPONSE);
    let err = Err(ApiError::new::<String>("HA_NOT_ENABLED", []));
    assert_eq!(xmlrpc::encode_response(&err), HA_NOT_ENABLED);
    // And the client reads them back.
    assert_eq!(xmlrpc::parse_response(OK_RESPONSE.as_bytes()).unwrap(), ok);
    assert_eq!(
        xmlrpc::parse_response(HA_NOT_ENABLED.as_bytes()).unwrap(),
        err
    );
}

#[test]
fn xml_ints_are_untyped_decimal_and_void_is_empty() {
    let mut out = String::new();
    xmlrpc::write_value(&mut out, &Value::Int(42));
    assert_eq!(out, "<value>42</value>");
    out.clear();
    xmlrpc::write_value(&mut out, &Value::void());
    assert_eq!(out, "<value></value>");
    out.clear();
    xmlrpc::write_value(&mut out, &Value::Bool(true));
    assert_eq!(out, "<value><boolean>1</boolean></value>");
    out.clear();
    xmlrpc::write_value(&mut out, &Value::Float(0.25));
    assert_eq!(out, "<value><double>0.25</double></value>");
    out.clear();
    xmlrpc::write_value(&mut out, &Value::DateTime("20240101T12:00:00Z".into()));
    assert_eq!(
        out,
        "<value><dateTime.iso8601>20240101T12:00:00Z</dateTime.iso8601></value>"
    );
}

#[test]
fn xml_accepts_every_input_form() {
    let body = r#"<?xml version="1.0"?><methodCall><methodName>m</methodName><params>
      <param><value>untyped text</value></param>
      <param><value/></param>
      <param><value></value></param>
      <param><value><string/></value></param>
      <param><value><i4>-7</i4></value></param>
      <param><value><int>8</int></value></param>
      <param><value><i8>9000000000</i8></value></param>
      <param><value>12</value></param>
      <param><value><boolean>0</boolean></value></param>
      <param><value><double>1.5</double></value></param>
      <param><value><dateTime.iso8601>19700101T00:00:00Z</dateTime.iso8601></value></param>
      <param><value><array><data><value>a</value><value><i4>1</i4></value></data></array></value></param>
      <param><value><array><data/></array></value></param>
      <param><value><struct><member><name>k</name><value><string>v &amp; &lt;w&gt; &#65;</string></value></member></struct></value></param>
      <param><value>  spaced  </value></param>
    </params></methodCall>"#;
    let call = xmlrpc::parse_call(body.as_bytes()).unwrap();
    let mut m = IndexMap::new();
    m.insert("k".to_string(), Value::str("v & <w> A"));
    assert_eq!(
        call.params,
        vec![
            Value::str("untyped text"),
            Value::str(""),
            Value::str(""),
            Value::str(""),
            Value::Int(-7),
            Value::Int(8),
            Value::Int(9_000_000_000),
            Value::str("12"),
            Value::Bool(false),
            Value::Float(1.5),
            Value::DateTime("19700101T00:00:00Z".into()),
            Value::Array(vec![Value::str("a"), Value::Int(1)]),
            Value::Array(vec![]),
            Value::Struct(m),
            Value::str("  spaced  "),
        ]
    );
}

#[test]
fn xml_call_without_params_is_malformed() {
    // Reference case 25: xapi answers this with HTTP 500.
    let body =
        r#"<?xml version="1.0"?><methodCall><methodName>session.logout</methodName></methodCall>"#;
    assert!(xmlrpc::parse_call(body.as_bytes()).is_err());
}

#[test]
fn xml_entities_are_never_expanded() {
    let bomb = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<methodCall><methodName>&lol2;</methodName><params/></methodCall>"#;
    assert!(xmlrpc::parse_call(bomb.as_bytes()).is_err());
    let undeclared = r#"<methodCall><methodName>&lol;</methodName><params/></methodCall>"#;
    assert!(xmlrpc::parse_call(undeclared.as_bytes()).is_err());
}

#[test]
fn xml_rejects_garbage_and_deep_nesting() {
    for bad in [
        "",
        "<methodCall>",
        "not xml",
        "<methodCall><methodName>x</methodName><params/></methodCall><extra/>",
    ] {
        assert!(
            xmlrpc::parse_call(bad.as_bytes()).is_err(),
            "{bad:?} parsed"
        );
    }
    let deep = format!(
        "<methodCall><methodName>m</methodName><params><param>{}{}</param></params></methodCall>",
        "<value><array><data>".repeat(100),
        "</data></array></value>".repeat(100)
    );
    assert!(xmlrpc::parse_call(deep.as_bytes()).is_err());
}

#[test]
fn double_formatting_matches_printf_g16() {
    for (f, s) in [
        (0.5, "0.5"),
        (1.0, "1"),
        (1e20, "1e+20"),
        (1.0 / 3.0, "0.3333333333333333"),
        (123456789.125, "123456789.125"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (-2.5, "-2.5"),
        (0.0, "0"),
    ] {
        assert_eq!(xmlrpc::format_g16(f), s, "{f}");
    }
}

#[test]
fn json_v2_shapes_are_xapis() {
    let call = jsonrpc::parse_call(
        br#"{"jsonrpc": "2.0", "method": "session.login_with_password", "params": ["user", "passwd", "version", "originator"], "id": 0}"#,
    )
    .unwrap();
    assert_eq!(call.version, jsonrpc::Version::V2);
    assert_eq!(call.method, "session.login_with_password");
    assert_eq!(call.id, json!(0));
    assert_eq!(
        call.params,
        ["user", "passwd", "version", "originator"].map(Value::str)
    );
    let err = Err(ApiError::session_invalid(
        "OpaqueRef:c90cd28f-37ec-4dbf-88e6-f697ccb28b39",
    ));
    assert_eq!(
        jsonrpc::encode_response(jsonrpc::Version::V2, &json!(3), &err),
        r#"{"jsonrpc":"2.0","error":{"code":1,"message":"SESSION_INVALID","data":["OpaqueRef:c90cd28f-37ec-4dbf-88e6-f697ccb28b39"]},"id":3}"#
    );
    assert_eq!(
        jsonrpc::encode_response(jsonrpc::Version::V2, &json!(7), &Ok(Value::Int(1))),
        r#"{"jsonrpc":"2.0","result":1,"id":7}"#
    );
}

#[test]
fn json_v1_shapes_are_xapis() {
    let err = Err(ApiError::session_invalid(
        "OpaqueRef:93f1a23cd-a640-41e3-b163-10f86e0eae67",
    ));
    assert_eq!(
        jsonrpc::encode_response(jsonrpc::Version::V1, &json!("xyz"), &err),
        r#"{"result":null,"error":["SESSION_INVALID","OpaqueRef:93f1a23cd-a640-41e3-b163-10f86e0eae67"],"id":"xyz"}"#
    );
    let dup = Err(ApiError::new(
        "MAP_DUPLICATE_KEY",
        ["Customer", "eSpiel Inc.", "eSpiel Incorporated"],
    ));
    assert_eq!(
        jsonrpc::encode_response(jsonrpc::Version::V1, &json!("xyz"), &dup),
        r#"{"result":null,"error":["MAP_DUPLICATE_KEY","Customer","eSpiel Inc.","eSpiel Incorporated"],"id":"xyz"}"#
    );
    assert_eq!(
        jsonrpc::encode_response(jsonrpc::Version::V1, &json!(1), &Ok(Value::void())),
        r#"{"result":"","error":null,"id":1}"#
    );
}

#[test]
fn json_requests_need_an_id_and_well_formed_params() {
    assert!(jsonrpc::parse_call(br#"{"jsonrpc":"2.0","method":"m","params":[]}"#).is_err());
    assert!(jsonrpc::parse_call(br#"{"method":"m","params":[],"id":null}"#).is_err());
    assert!(
        jsonrpc::parse_call(br#"{"method":"m","id":1}"#).is_err(),
        "v1 needs params"
    );
    assert!(jsonrpc::parse_call(br#"{"id":1,"params":[]}"#).is_err());
    assert!(jsonrpc::parse_call(b"{not json").is_err());
    assert!(jsonrpc::parse_call(b"[1,2]").is_err());
    // v2 without params means [] (ocaml-rpc >= 10), and an object is one parameter.
    let c = jsonrpc::parse_call(br#"{"jsonrpc":"2.0","method":"m","id":0}"#).unwrap();
    assert!(c.params.is_empty());
    let c = jsonrpc::parse_call(br#"{"jsonrpc":"2.0","method":"m","params":{"a":1},"id":"q"}"#)
        .unwrap();
    assert_eq!(c.params.len(), 1);
    assert_eq!(c.id, json!("q"));
}

#[test]
fn json_client_reads_both_error_shapes() {
    let v2 = br#"{"jsonrpc":"2.0","error":{"code":1,"message":"UUID_INVALID","data":["VM","x"]},"id":1}"#;
    assert_eq!(
        jsonrpc::parse_response(v2).unwrap(),
        Err(ApiError::uuid_invalid("VM", "x"))
    );
    let v1 = br#"{"result":null,"error":["UUID_INVALID","VM","x"],"id":1}"#;
    assert_eq!(
        jsonrpc::parse_response(v1).unwrap(),
        Err(ApiError::uuid_invalid("VM", "x"))
    );
    let ok = br#"{"result":{"a":[1,true]},"error":null,"id":1}"#;
    let Ok(Value::Struct(m)) = jsonrpc::parse_response(ok).unwrap() else {
        panic!()
    };
    assert_eq!(m["a"], Value::Array(vec![Value::Int(1), Value::Bool(true)]));
}

// ---- property tests ----

/// Strings XML 1.0 can carry (no control characters but tab and newline; `\r` is normalised by
/// every XML parser).
fn xml_string() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[^\\x00-\\x08\\x0b-\\x1f]{0,12}").unwrap()
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        xml_string().prop_map(Value::Str),
        any::<i64>().prop_map(Value::Int),
        any::<bool>().prop_map(Value::Bool),
        // Binary fractions print exactly in 16 significant digits.
        (-1_000_000i64..1_000_000, 0u32..8)
            .prop_map(|(m, e)| Value::Float(m as f64 / f64::from(1u32 << e))),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((xml_string(), inner), 0..4)
                .prop_map(|kv| Value::Struct(kv.into_iter().collect())),
        ]
    })
}

/// XML-RPC erases the type of ints (xapi emits them untyped); the data model restores it.
fn same_modulo_untyped_ints(orig: &Value, back: &Value) -> bool {
    match (orig, back) {
        (Value::Int(i), Value::Str(s)) => s == &i.to_string(),
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_modulo_untyped_ints(x, y))
        }
        (Value::Struct(a), Value::Struct(b)) => {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|((ka, va), (kb, vb))| ka == kb && same_modulo_untyped_ints(va, vb))
        }
        (a, b) => a == b,
    }
}

proptest! {
    #[test]
    fn xml_call_round_trip(method in "[a-zA-Z_.]{1,20}", params in prop::collection::vec(value(), 0..4)) {
        let doc = xmlrpc::encode_call(&method, &params);
        let call = xmlrpc::parse_call(doc.as_bytes()).unwrap();
        prop_assert_eq!(&call.method, &method);
        prop_assert_eq!(call.params.len(), params.len());
        for (o, b) in params.iter().zip(&call.params) {
            prop_assert!(same_modulo_untyped_ints(o, b), "{:?} came back as {:?}", o, b);
        }
    }

    #[test]
    fn xml_response_round_trip(v in value(), code in "[A-Z_]{1,12}", params in prop::collection::vec(xml_string(), 0..3)) {
        let back = xmlrpc::parse_response(xmlrpc::encode_response(&Ok(v.clone())).as_bytes()).unwrap().unwrap();
        prop_assert!(same_modulo_untyped_ints(&v, &back));
        let err = ApiError { code, params };
        let back = xmlrpc::parse_response(xmlrpc::encode_response(&Err(err.clone())).as_bytes()).unwrap();
        prop_assert_eq!(back, Err(err));
    }

    #[test]
    fn json_round_trip(v in value(), id in 0u64..1000) {
        for version in [jsonrpc::Version::V1, jsonrpc::Version::V2] {
            let call = jsonrpc::parse_call(jsonrpc::encode_call(version, "m", std::slice::from_ref(&v), id).as_bytes()).unwrap();
            prop_assert_eq!(&call.params[0], &v);
            let resp = jsonrpc::encode_response(version, &json!(id), &Ok(v.clone()));
            prop_assert_eq!(jsonrpc::parse_response(resp.as_bytes()).unwrap(), Ok(v.clone()));
        }
    }

    #[test]
    fn xml_parser_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = xmlrpc::parse_call(&bytes);
        let _ = jsonrpc::parse_call(&bytes);
    }
}
