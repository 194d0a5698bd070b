//! The contract between our `xe` and xapi's own bash completion script
//! (xen-api `ocaml/xe-cli/bash-completion`, read at commit e2ee48d6), which operators may keep
//! installed. That script is not ours and is not in this repository; instead these tests pin the
//! exact shape of every xe output it parses, each naming the upstream function and lines it
//! protects. The script runs, for the commands we have:
//! * `xe help --minimal --all`, split on `,` and grouped by the text before the first `-`
//!   (`_xe`, lines 113-125, `__split_into_groups` lines 18-25);
//! * `xe help <cmd>`, grepping `^[^:]*reqd params`, `^[^:]*optional params` and
//!   `^[^:]*description`, taking the text after the first `:` minus one space, splitting on `, `
//!   (`params` 755-770, `__process_params` 749-753, `description` 743-747), and grepping the
//!   optional line for `<vm-selectors>`/`<host-selectors>`/`<sr-selectors>` (773-776);
//! * `xe <class>-list --minimal params=uuid` (with `--all` for `*-uuid=` values) and
//!   `xe <class>-list params=name-label,number,vm-name-label,device --minimal uuid=<u>` for
//!   descriptions (`uuid)` case 210-256, `set_completions_for_names` 735-741, `*)` 599-630);
//!   `xe <class>-list --minimal params=name-label` for `vm=`/`host=`/`sr=` (258-277); the
//!   `--minimal` list is split on unescaped commas, then `\,` and `\\` are unescaped
//!   (`__preprocess_suggestions` 846-858);
//! * `xe <class>-list params=all [uuid=<u>]`, whose lines give field names by cutting at the first
//!   `:` and deleting the `(…)` marker (`params)` case 279-291), and whose `SRW`/`MRW` lines give the
//!   names offered to `-param-add`/`-param-remove`, all names to `-param-get` (`param-name)` case
//!   302-318).

mod common;

use common::{xe, TestDaemon};
use xenha::cli::table::commands;

fn ok(d: &TestDaemon, args: &[&str]) -> String {
    let (code, out, err) = xe(d, args);
    assert_eq!((code, err.as_str()), (0, ""), "xe {args:?}");
    out
}

/// Split a `--minimal` line as `__preprocess_suggestions` does: at commas not escaped by a
/// backslash, then unescape `\,` and `\\`.
fn minimal_words(line: &str) -> Vec<String> {
    let mut words = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => words.last_mut().unwrap().extend(chars.next()),
            ',' => words.push(String::new()),
            c => words.last_mut().unwrap().push(c),
        }
    }
    words.retain(|w| !w.is_empty());
    words
}

/// The one stdout line of a `--minimal` command (the script reads it with `$(…)`).
fn one_line(out: &str) -> &str {
    assert!(
        out.ends_with('\n') && out.matches('\n').count() == 1,
        "one line expected: {out:?}"
    );
    out.trim_end_matches('\n')
}

#[test]
fn help_minimal_all_is_one_plain_comma_list_of_the_visible_commands() {
    let d = TestDaemon::start();
    let out = ok(&d, &["help", "--minimal", "--all"]);
    let names: Vec<&str> = one_line(&out).split(',').collect();
    let mut want: Vec<&str> = commands()
        .iter()
        .filter(|c| !c.hidden)
        .map(|c| c.name.as_str())
        .collect();
    want.sort();
    // Upstream 113-125 and 18-25: `__split_into_groups` splits on every comma, so names must
    // need no escaping, and it cuts at `-` to find the groups (vm-, host-, pool-…).
    assert_eq!(names, want);
    for n in &names {
        assert!(
            n.contains('-') && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
            "{n}"
        );
    }
}

#[test]
fn help_for_each_command_parses_into_its_parameters() {
    let d = TestDaemon::start();
    for c in commands().iter().filter(|c| !c.hidden) {
        let out = ok(&d, &["help", &c.name]);
        // Upstream 745, 757-758, 774-776: `grep '^[^:]*<key>'`, so exactly one line has the key
        // before its first colon.
        let line = |key: &str| -> String {
            let hits: Vec<&str> = out
                .lines()
                .filter(|l| l.split(':').next().unwrap().contains(key))
                .collect();
            assert_eq!(hits.len(), 1, "{}: {key} in {out:?}", c.name);
            hits[0].to_string()
        };
        // Upstream 751-752 (`__process_params`): `cut -d: -f2- | grep -Ev "^ $" | cut -c 2-`,
        // then split on `,` and drop spaces; an empty list must be exactly one space.
        let params = |key: &str| -> Vec<String> {
            let l = line(key);
            let after = l.split_once(':').unwrap().1;
            assert!(after.starts_with(' '), "{}: {l:?}", c.name);
            if after == " " {
                return vec![];
            }
            after[1..].split(", ").map(String::from).collect()
        };
        let reqd = params("reqd params");
        let optional = params("optional params");
        assert_eq!(reqd, c.reqd, "{}", c.name);
        assert_eq!(optional, c.optional_with_selectors(), "{}", c.name);
        for p in reqd.iter().chain(&optional) {
            assert!(
                !p.is_empty() && !p.contains([' ', ',']),
                "{}: {p:?}",
                c.name
            );
        }
        // Upstream 774-776: selector detection greps the optional line for the literal tokens.
        let sel = line("optional params");
        for token in ["<vm-selectors>", "<host-selectors>", "<sr-selectors>"] {
            assert_eq!(
                sel.contains(token),
                optional.iter().any(|p| p == token),
                "{}",
                c.name
            );
        }
        // Upstream 745-746 (`description`): `cut -d: -f2-` keeps the whole help text after the
        // key (then cuts at the first `.`).
        let desc = line("description");
        assert_eq!(
            desc.split_once(':').unwrap().1,
            format!(" {}", c.description()),
            "{}",
            c.name
        );
    }
}

#[test]
fn value_lists_and_their_descriptions() {
    let d = TestDaemon::start();
    ok(
        &d,
        &[
            "sr-create",
            "name-label=disks, fast",
            "type=file",
            "shared=true",
            &format!("device-config:location={}", d.state_dir().display()),
        ],
    );
    let vm = one_line(&ok(&d, &["vm-create", "name-label=a,b\\c"])).to_string();
    // Upstream 210-256 and 737: `uuid=` values come from `xe <class>-list --minimal params=uuid`;
    // the description command (251) names fields the class may not have (number,
    // vm-name-label, device), which must be ignored, not refused.
    for (class, described_by) in [
        ("host", "name-label"),
        ("vm", "name-label"),
        ("sr", "name-label"),
        ("host-cpu", "number"),
    ] {
        let list = format!("{class}-list");
        let uuids = minimal_words(one_line(&ok(&d, &[&list, "--minimal", "params=uuid"])));
        assert!(!uuids.is_empty(), "{class}");
        // Upstream 604-630: `*-uuid=` values list with `--all` (sr-uuid=, host-uuid=…).
        let all = minimal_words(one_line(&ok(
            &d,
            &[&list, "--all", "--minimal", "params=uuid"],
        )));
        assert_eq!(all, uuids, "{class}");
        for u in &uuids {
            let desc = ok(
                &d,
                &[
                    &list,
                    "params=name-label,number,vm-name-label,device",
                    "--minimal",
                    &format!("uuid={u}"),
                ],
            );
            let want = ok(&d, &[&list, "--minimal", &format!("params={described_by}")]);
            if uuids.len() == 1 {
                assert_eq!(desc, want, "{class}");
            }
            assert!(!one_line(&desc).is_empty(), "{class} {u}");
        }
    }
    // Upstream 258-277 and 849: `vm=`/`sr=` values are name-labels, with commas and backslashes
    // escaped so the script's splitting gives them back whole.
    let vms = ok(&d, &["vm-list", "--minimal", "params=name-label"]);
    assert_eq!(one_line(&vms), "a\\,b\\\\c");
    assert_eq!(minimal_words(one_line(&vms)), ["a,b\\c"]);
    let srs = ok(&d, &["sr-list", "--minimal", "params=name-label"]);
    assert_eq!(minimal_words(one_line(&srs)), ["disks, fast"]);
    let desc = ok(
        &d,
        &[
            "vm-list",
            "params=name-label,number,vm-name-label,device",
            "--minimal",
            &format!("uuid={vm}"),
        ],
    );
    assert_eq!(desc, "a\\,b\\\\c\n");
}

#[test]
fn params_all_lines_give_the_field_names() {
    let d = TestDaemon::start();
    let pool = one_line(&ok(&d, &["pool-list", "--minimal", "params=uuid"])).to_string();
    for args in [
        vec!["pool-list".to_string(), "params=all".into()],
        vec![
            "pool-list".into(),
            "params=all".into(),
            format!("uuid={pool}"),
        ],
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = ok(&d, &args);
        let mut all = Vec::new();
        let mut settable = Vec::new();
        for l in out.lines().filter(|l| !l.is_empty()) {
            // Upstream 285-288 and 306-314: `cut -d: -f1` (or at `(`), then delete the `(…)`
            // marker and the surrounding spaces.
            let key = l.split(':').next().unwrap();
            let (name, marker) = key
                .trim()
                .split_once(" (")
                .unwrap_or_else(|| panic!("no marker: {l:?}"));
            let marker = marker.strip_suffix(')').expect("marker closes");
            assert!(
                [" RO", " RW", "SRO", "SRW", "MRO", "MRW"].contains(&marker),
                "{l:?}"
            );
            assert!(!name.contains([' ', '(', ')']), "{l:?}");
            all.push(name.to_string());
            if l.contains("SRW") || l.contains("MRW") {
                settable.push((name.to_string(), marker == "MRW"));
            }
        }
        // Upstream 312-314 offers every name to `-param-get`, 304-311 the SRW/MRW ones to
        // `-param-add`/`-param-remove`: each must be accepted.
        for name in &all {
            ok(
                &d,
                &[
                    "pool-param-get",
                    &format!("uuid={pool}"),
                    &format!("param-name={name}"),
                ],
            );
        }
        assert!(
            settable.contains(&("other-config".into(), true)),
            "{settable:?}"
        );
        assert!(settable.contains(&("tags".into(), false)), "{settable:?}");
        for (name, map) in &settable {
            // Maps take `key=value`, sets `param-key=value`.
            let entry = if *map { "k=v" } else { "param-key=k" };
            ok(
                &d,
                &[
                    "pool-param-add",
                    &format!("uuid={pool}"),
                    &format!("param-name={name}"),
                    entry,
                ],
            );
            ok(
                &d,
                &[
                    "pool-param-remove",
                    &format!("uuid={pool}"),
                    &format!("param-name={name}"),
                    "param-key=k",
                ],
            );
        }
    }
}
