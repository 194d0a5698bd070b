//! `xe help` in all its forms (`cli_frontend.ml` `rio_help`), and the client usage text
//! (`newcli.ml` `usage`). Help needs no server: it is printed straight from the command table.

use super::args::CommandLine;
use super::globals::usage_lines;
use super::printer::{Out, Printer};
use super::table::{commands, find};

/// The client's usage text (stderr), with `xe` as argv\[0\] (`newcli.ml` `usage`): the flags'
/// usage lines come from the global flag table.
pub fn usage() -> String {
    format!(
        "Usage:\n  xe <command>\n{}    [ <other arguments> ... ]  Command-specific options\n\nA full list of commands can be obtained by running\n  xe help -s <server> -p <port>\n",
        usage_lines(false)
    )
}

/// The header of `xe help` and `xe help --all` (`rio_help`): the usage without the flags the
/// client passes on to the server, and a pointer to `xe help <command>`.
fn help_header() -> String {
    format!(
        "Usage:\n  xe <command>\n{}    [ <other arguments> ... ]  Command-specific options\n\nTo get help on a specific command:\n  xe help <command>\n\n",
        usage_lines(true)
    )
}

/// `make_list`: names joined by `", "`, four-space indent, a new line when the next name would
/// pass 74 columns.
pub fn make_list(names: &[&str]) -> Vec<String> {
    let indent = "    ";
    let mut lines = Vec::new();
    let Some((first, rest)) = names.split_first() else {
        return lines;
    };
    let mut cur = format!("{indent}{first}");
    for n in rest {
        if cur.len() + n.len() > 74 {
            lines.push(std::mem::replace(&mut cur, format!("{indent}{n}")));
        } else {
            cur = format!("{cur}, {n}");
        }
    }
    lines.push(cur);
    lines
}

/// The record `xe help <cmd>` prints, or `None` for an unknown command.
pub fn command_record(name: &str) -> Option<Vec<(String, String)>> {
    let c = find(name)?;
    Some(vec![
        ("command name        ".into(), c.name.clone()),
        ("reqd params     ".into(), c.reqd.join(", ")),
        (
            "optional params ".into(),
            c.optional_with_selectors().join(", "),
        ),
        ("description     ".into(), c.description()),
    ])
}

/// Run `xe help …` with its parsed parameters.
pub fn help(cmd: &CommandLine, p: &mut Printer) {
    let skip = ["server", "username", "password", "port", "minimal", "all"];
    let named: Vec<&str> = cmd
        .params
        .iter()
        .filter(|(k, _)| !skip.contains(&k.as_str()))
        .map(|(k, _)| k.as_str())
        .collect();
    if !named.is_empty() {
        for n in named {
            match command_record(n) {
                Some(r) => p.print(Out::Table(vec![r])),
                None => p.print(Out::List(vec![format!("Unknown command '{n}'")])),
            }
        }
        return;
    }
    let visible: Vec<&str> = commands()
        .iter()
        .filter(|c| !c.hidden)
        .map(|c| c.name.as_str())
        .collect();
    if cmd.get("all") == Some("true") {
        if p.minimal() {
            p.print(Out::List(visible.iter().map(|s| s.to_string()).collect()));
            return;
        }
        let (host, other): (Vec<&str>, Vec<&str>) =
            visible.iter().partition(|n| n.starts_with("host-"));
        let (vm, other): (Vec<&str>, Vec<&str>) = other.iter().partition(|n| n.starts_with("vm-"));
        p.print(Out::List(vec![format!(
            "{}Full command list\n-----------------\n",
            help_header()
        )]));
        p.print(Out::List(make_list(&host)));
        p.print(Out::List(make_list(&[""])));
        p.print(Out::List(make_list(&vm)));
        p.print(Out::List(make_list(&[""])));
        p.print(Out::List(make_list(&other)));
    } else {
        let std: Vec<String> = commands()
            .iter()
            .filter(|c| !c.hidden && c.standard)
            .map(|c| c.name.clone())
            .collect();
        if p.minimal() {
            p.print(Out::List(std));
            return;
        }
        p.print(Out::List(vec![format!(
            "{}To get a full listing of commands:\n  xe help --all\n\nCommon command list\n-------------------\n",
            help_header()
        )]));
        let names: Vec<&str> = std.iter().map(String::as_str).collect();
        p.print(Out::List(make_list(&names)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_for_one_command_is_the_documented_record() {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let mut p = Printer::new(false, &mut out, &mut err);
        let cmd = CommandLine {
            name: "help".into(),
            params: vec![("host-cpu-info".into(), String::new())],
        };
        help(&cmd, &mut p);
        p.flush();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "command name            : host-cpu-info\n        reqd params     : \n        optional params : uuid\n        description     : Lists information about the host's physical CPUs.\n\n\n"
        );
    }

    #[test]
    fn lists_wrap_before_74_columns() {
        let names = ["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"; 4];
        let lines = make_list(&names);
        assert_eq!(lines.len(), 2);
        assert!(lines.iter().all(|l| l.len() <= 74 + 2));
        assert_eq!(make_list(&[""]), ["    "]);
    }
}
