//! The checked-in completions and man page must be what the command table generates now.
//! Regenerate with `xe --generate-completions completions` and `xe --generate-man man`.

use xenha::cli::generate;

mod common;

fn assert_fresh(rel: &str, generated: Vec<u8>) {
    common::assert_fresh(
        rel,
        &generated,
        "`cargo run --bin xe -- --generate-completions completions` and `cargo run --bin xe -- --generate-man man`",
    );
}

#[test]
fn completions_are_fresh() {
    assert_fresh("completions/xe.bash", generate::bash().into_bytes());
    assert_fresh("completions/_xe", generate::zsh().into_bytes());
    assert_fresh("completions/xe.fish", generate::fish().into_bytes());
}

#[test]
fn man_page_is_fresh() {
    assert_fresh("man/xe.1", generate::man());
}

#[test]
fn completions_know_every_visible_command_and_its_parameters() {
    let bash = generate::bash();
    for c in xenha::cli::table::commands().iter().filter(|c| !c.hidden) {
        assert!(
            bash.contains(&format!("    {}) echo \"", c.name)),
            "{}",
            c.name
        );
    }
    assert!(bash.contains("    pool-ha-enable) echo \"heartbeat-sr-uuids= ha-config:\" ;;"));
    assert!(bash.contains("    vm-param-list) echo vm ;;"));
    assert!(
        !bash.contains("pool-ha-prevent-restarts-for"),
        "hidden commands stay hidden"
    );
}
