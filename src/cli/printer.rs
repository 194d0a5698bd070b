//! xe's printer (`cli_printer.ml`): records, lists, messages, and `--minimal`.
//!
//! Owns byte layout only: record alignment, the two blank lines after every record, `--minimal`
//! comma joining with `\,`/`\\` escaping, and the order in which buffered minimal output comes
//! out. What goes into a record is [`super::records`]' business.

use std::io::Write;

/// One record: `(key, value)` lines in order.
pub type Rec = Vec<(String, String)>;

/// What a command prints (`Cli_printer.printval`).
#[derive(Clone, Debug, PartialEq)]
pub enum Out {
    /// A list of records.
    Table(Vec<Rec>),
    /// Lines.
    List(Vec<String>),
    /// A message (dropped in `--minimal` mode).
    Msg(String),
    /// A line on stderr.
    Stderr(String),
}

/// `multi_line_record`: first key left-justified to `4 + longest`, the others right-justified.
pub fn multi_line_record(r: &[(String, String)]) -> String {
    let w = 4 + r.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut s = String::new();
    for (i, (k, v)) in r.iter().enumerate() {
        if i > 0 {
            s.push('\n');
        }
        if i == 0 {
            s.push_str(&format!("{k:<w$}"));
        } else {
            s.push_str(&format!("{k:>w$}"));
        }
        s.push_str(": ");
        s.push_str(v);
    }
    s.push('\n');
    s
}

/// `escape_commas`: `,` becomes `\,` and `\` becomes `\\`.
pub fn escape_commas(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            ',' => o.push_str("\\,"),
            '\\' => o.push_str("\\\\"),
            c => o.push(c),
        }
    }
    o
}

/// A printer writing to stdout/stderr sinks, in normal or `--minimal` mode.
pub struct Printer<'a> {
    minimal: bool,
    buffer: Vec<String>,
    out: &'a mut dyn Write,
    err: &'a mut dyn Write,
}

impl<'a> Printer<'a> {
    /// A printer over the given sinks.
    pub fn new(minimal: bool, out: &'a mut dyn Write, err: &'a mut dyn Write) -> Printer<'a> {
        Printer {
            minimal,
            buffer: Vec::new(),
            out,
            err,
        }
    }

    /// Whether this printer is in `--minimal` mode.
    pub fn minimal(&self) -> bool {
        self.minimal
    }

    /// Print one value.
    pub fn print(&mut self, v: Out) {
        if self.minimal {
            match v {
                Out::Table(rs) => {
                    if !rs.is_empty() && rs.iter().all(|r| !r.is_empty()) {
                        let names: Vec<String> =
                            rs.iter().map(|r| escape_commas(&r[0].1)).collect();
                        self.buffer.push(names.join(","));
                    }
                }
                Out::List(ss) => {
                    let e: Vec<String> = ss.iter().map(|s| escape_commas(s)).collect();
                    self.buffer.push(e.join(","));
                }
                Out::Msg(_) | Out::Stderr(_) => {}
            }
            return;
        }
        let _ = match v {
            Out::Table(rs) => rs
                .iter()
                .try_for_each(|r| write!(self.out, "{}\n\n", multi_line_record(r))),
            Out::List(ss) => ss.iter().try_for_each(|s| writeln!(self.out, "{s}")),
            Out::Msg(s) => writeln!(self.out, "{s}"),
            Out::Stderr(s) => writeln!(self.err, "{s}"),
        };
    }

    /// A line straight to stdout, in `--minimal` mode too (xapi's `marshal fd (Command (Print
    /// s))`, which bypasses the printer), flushed so that a prompt after it is seen.
    pub fn line(&mut self, s: &str) {
        let _ = writeln!(self.out, "{s}");
        let _ = self.out.flush();
    }

    /// Text straight to stderr, no newline added (xapi's `PrintStderr`).
    pub fn stderr_raw(&mut self, s: &str) {
        let _ = write!(self.err, "{s}");
    }

    /// End of a successful command: in `--minimal` mode print the buffer as one line (xapi
    /// prepends each item, so later items come first).
    pub fn flush(&mut self) {
        if self.minimal {
            let items: Vec<&str> = self.buffer.iter().rev().map(String::as_str).collect();
            let _ = writeln!(self.out, "{}", items.join(","));
        }
        let _ = self.out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(pairs: &[(&str, &str)]) -> Rec {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn run(minimal: bool, items: Vec<Out>) -> String {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let mut p = Printer::new(minimal, &mut out, &mut err);
        for i in items {
            p.print(i);
        }
        p.flush();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn records_align_like_xapi_and_end_with_two_blank_lines() {
        let r = rec(&[
            ("uuid ( RO)", "u1"),
            ("name-label ( RW)", "web"),
            ("power-state ( RO)", "running"),
            ("empty ( RW)", ""),
        ]);
        assert_eq!(
            run(false, vec![Out::Table(vec![r.clone(), r])]),
            "uuid ( RO)           : u1\n     name-label ( RW): web\n    power-state ( RO): running\n          empty ( RW): \n\n\n\
             uuid ( RO)           : u1\n     name-label ( RW): web\n    power-state ( RO): running\n          empty ( RW): \n\n\n"
        );
    }

    #[test]
    fn minimal_prints_first_fields_escaped_on_one_line_even_when_empty() {
        let t = Out::Table(vec![rec(&[("uuid", "a,b")]), rec(&[("uuid", "c\\d")])]);
        assert_eq!(run(true, vec![t]), "a\\,b,c\\\\d\n");
        assert_eq!(run(true, vec![Out::Table(vec![])]), "\n");
        assert_eq!(run(true, vec![Out::Msg("false".into())]), "\n");
        assert_eq!(
            run(
                true,
                vec![Out::List(vec!["x".into()]), Out::List(vec!["y".into()])]
            ),
            "y,x\n"
        );
    }
}
