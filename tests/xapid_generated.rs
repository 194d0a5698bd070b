//! `xapid`'s checked-in completions and man page must be what its clap command generates now,
//! and the bash completion must complete its flags. Regenerate with
//! `xapid --generate-completions completions` and `xapid --generate-man man`.

use std::path::Path;
use std::process::Command;

use xenha::daemon::generate;

mod common;

fn assert_fresh(rel: &str, generated: Vec<u8>) {
    common::assert_fresh(
        rel,
        &generated,
        "`cargo run --bin xapid -- --generate-completions completions` and `cargo run --bin xapid -- --generate-man man`",
    );
}

#[test]
fn completions_are_fresh() {
    assert_fresh("completions/xapid.bash", generate::bash().into_bytes());
    assert_fresh("completions/_xapid", generate::zsh().into_bytes());
    assert_fresh("completions/xapid.fish", generate::fish().into_bytes());
}

#[test]
fn man_page_is_fresh() {
    assert_fresh("man/xapid.8", generate::man());
}

#[test]
fn bash_completion_completes_flags_and_their_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("xapid.toml"), "").unwrap();
    std::fs::write(dir.path().join("other"), "").unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("completions/xapid.bash");
    // What bash does on TAB: the words so far in COMP_WORDS, the cursor's word at COMP_CWORD,
    // and the command, the word and the one before it as arguments. compopt complains outside
    // readline; what it would add (file name quoting, directories) is readline's, not ours.
    let probe = r#"
source "$1"
t() {
    COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); COMPREPLY=()
    _xapid xapid "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}" 2>/dev/null
    echo "${COMPREPLY[*]}"
}
t xapid --state
t xapid --ha-
t xapid --state-dir /tmp/x --so
t xapid --gen
t xapid --config "$2/xa"
"#;
    let o = Command::new("bash")
        .args([
            "-c",
            probe,
            "probe",
            script.to_str().unwrap(),
            dir.path().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let want = [
        "--state-dir".to_string(),
        "--ha-port --ha-watchdog --ha-fence".into(),
        "--socket".into(),
        // The generator flags are the build's, not the operator's.
        String::new(),
        format!("{}/xapid.toml", dir.path().display()),
    ];
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        want.join("\n") + "\n",
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn fish_completion_completes_flags_and_their_files() {
    if !common::have_shell("fish", "fish_completion_completes_flags_and_their_files") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("xapid.toml"), "").unwrap();
    std::fs::create_dir(dir.path().join("xdir")).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("completions/xapid.fish");
    let probe = r#"source $argv[1]
for l in 'xapid --state' 'xapid --ha-f' 'xapid --gen' "xapid --config $argv[2]/x" "xapid --state-dir $argv[2]/x"
    complete -C $l | string replace -r '\t.*' ''
    echo ==
end"#;
    let o = Command::new("fish")
        .args([
            "-c",
            probe,
            script.to_str().unwrap(),
            dir.path().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let d = dir.path().display();
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        format!(
            "--state-dir\n==\n--ha-fence\n==\n==\n{d}/xapid.toml\n{d}/xdir/\n==\n{d}/xdir/\n==\n"
        ),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
