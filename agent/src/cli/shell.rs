//! `osprey shell`: interactive SQL with history, dot-commands and multi-line statements.

use rustyline::{Editor, error::ReadlineError, history::DefaultHistory};

use super::output::{Mode, render};
use crate::sql::{Engine, vtab::schema_sql};

const HELP: &str = "\
Welcome to the Osprey shell. Enter SQL ending with ';', or a command:
  .help               this text
  .tables [PATTERN]   list tables
  .schema [TABLE]     show CREATE TABLE statements
  .mode MODE          pretty | json | csv | line
  .header on|off      show column names
  .quit / .exit       leave (Ctrl-D works too)
";

pub struct Shell {
    engine: Engine,
    mode: Mode,
    header: bool,
    /// The lines of a statement not yet ended by `;`.
    pending: String,
}

impl std::fmt::Debug for Shell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shell")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

/// What a dot-command did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Output(String),
    Quit,
}

/// What one line of input did.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Print this on stdout (may be empty).
    Output(String),
    /// Print this on stderr, after `Error: `.
    Error(String),
    /// The statement goes on; read another line.
    More,
    Quit,
}

fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Pretty => "pretty",
        Mode::Json => "json",
        Mode::Csv => "csv",
        Mode::Line => "line",
    }
}

impl Shell {
    pub fn new(engine: Engine, mode: Mode, header: bool) -> Self {
        Self {
            engine,
            mode,
            header,
            pending: String::new(),
        }
    }

    /// True while a statement spans lines (the prompt shows `...>`).
    pub fn in_statement(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Drops a half-typed statement (Ctrl-C).
    pub fn cancel(&mut self) {
        self.pending.clear();
    }

    /// Handles one line of input: a dot-command, or a piece of SQL that runs once `;` ends it.
    pub fn feed(&mut self, line: &str) -> Step {
        let trimmed = line.trim();
        if self.pending.is_empty() {
            if trimmed.starts_with('.') {
                return match self.command(trimmed) {
                    Outcome::Quit => Step::Quit,
                    Outcome::Output(s) => Step::Output(s),
                };
            }
            // Blank and comment-only lines start no statement (otherwise the prompt would
            // switch to `...>` and wait for a `;` the user never meant to type).
            if trimmed.is_empty() || trimmed.starts_with("--") {
                return Step::Output(String::new());
            }
        } else {
            self.pending.push('\n');
        }
        self.pending.push_str(line);
        if !crate::sql::vtab::is_complete_statement(&self.pending) {
            return Step::More;
        }
        let sql = std::mem::take(&mut self.pending);
        match self.sql(&sql) {
            Ok(out) => Step::Output(out),
            Err(e) => Step::Error(e),
        }
    }

    /// Runs one dot-command.
    pub fn command(&mut self, line: &str) -> Outcome {
        let mut words = line.split_whitespace();
        let cmd = words.next().unwrap_or("");
        let arg = words.next();
        let out = match cmd {
            ".quit" | ".exit" | ".q" => return Outcome::Quit,
            ".help" => HELP.to_owned(),
            ".tables" => {
                let mut s = String::new();
                for (t, _) in self.engine.catalog() {
                    if arg.is_none_or(|p| t.contains(p)) {
                        s.push_str(&format!("  => {t}\n"));
                    }
                }
                s
            }
            ".schema" => {
                let mut s = String::new();
                for t in self.engine.table_names() {
                    // Table names are case-insensitive in SQL, so here too.
                    if arg.is_none_or(|a| a.eq_ignore_ascii_case(t))
                        && let Some(table) = self.engine.table(t)
                    {
                        s.push_str(&schema_sql(table.as_ref()));
                        s.push_str(";\n");
                    }
                }
                if s.is_empty() {
                    s = format!("Error: no such table: {}\n", arg.unwrap_or(""));
                }
                s
            }
            ".mode" => match (arg, arg.and_then(Mode::parse)) {
                (None, _) => format!("current output mode: {}\n", mode_name(self.mode)),
                (Some(_), Some(m)) => {
                    self.mode = m;
                    String::new()
                }
                (Some(_), None) => {
                    "Error: .mode takes one of: pretty, json, csv, line\n".to_owned()
                }
            },
            ".header" | ".headers" => match arg {
                Some("on") => {
                    self.header = true;
                    String::new()
                }
                Some("off") => {
                    self.header = false;
                    String::new()
                }
                _ => "Error: .header takes on or off\n".to_owned(),
            },
            other => format!("Error: unknown command {other}; try .help\n"),
        };
        Outcome::Output(out)
    }

    pub fn sql(&self, sql: &str) -> Result<String, String> {
        self.engine
            .query(sql)
            .map(|rs| render(&rs, self.mode, self.header))
    }

    /// The interactive loop.
    pub fn run(mut self) -> anyhow::Result<()> {
        let mut ed: Editor<Completion, DefaultHistory> = Editor::new()?;
        let history =
            std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".osprey_history"));
        if let Some(h) = &history {
            let _ = ed.load_history(h);
        }
        println!("Using a virtual database. Need help, type '.help'");
        loop {
            let prompt = if self.in_statement() {
                "    ...> "
            } else {
                "osprey> "
            };
            // Tables come and go (extensions): the words are taken again for each line.
            ed.set_helper(Some(Completion(self.words())));
            match ed.readline(prompt) {
                Ok(line) => {
                    // History keeps whole statements, as typed, and dot-commands.
                    let entry = if self.in_statement() {
                        format!("{}\n{line}", self.pending)
                    } else {
                        line.clone()
                    };
                    let step = self.feed(&line);
                    if step != Step::More && !entry.trim().is_empty() {
                        let _ = ed.add_history_entry(entry.trim());
                    }
                    match step {
                        Step::Output(s) => print!("{s}"),
                        Step::Error(e) => eprintln!("Error: {e}"),
                        Step::More => {}
                        Step::Quit => break,
                    }
                }
                Err(ReadlineError::Interrupted) => self.cancel(),
                Err(ReadlineError::Eof) => break,
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(h) = &history {
            let _ = ed.save_history(h);
        }
        Ok(())
    }
}

/// The dot-commands, for completion.
const COMMANDS: &[&str] = &[
    ".help", ".tables", ".schema", ".mode", ".header", ".quit", ".exit",
];

/// The word that ends at `pos` in `line` (letters, digits, `_` and a leading `.`): where it
/// starts, and the words of `words` that extend it.
pub fn complete(words: &[String], line: &str, pos: usize) -> (usize, Vec<String>) {
    let before = line.get(..pos).unwrap_or(line);
    let start = before
        .char_indices()
        .rev()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '.'))
        .map_or(0, |(i, c)| i + c.len_utf8());
    let word = &before[start..];
    if word.is_empty() {
        return (start, Vec::new());
    }
    let lower = word.to_ascii_lowercase();
    let found = words
        .iter()
        .filter(|w| w.to_ascii_lowercase().starts_with(&lower) && w.len() > word.len())
        .cloned()
        .collect();
    (start, found)
}

/// Tab completion over the words the shell knows now.
struct Completion(Vec<String>);

impl rustyline::completion::Completer for Completion {
    type Candidate = String;
    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        Ok(complete(&self.0, line, pos))
    }
}

impl rustyline::hint::Hinter for Completion {
    type Hint = String;
}
impl rustyline::highlight::Highlighter for Completion {}
impl rustyline::validate::Validator for Completion {}
impl rustyline::Helper for Completion {}

impl Shell {
    /// What Tab completes: dot-commands, table names and column names (extensions' too).
    pub fn words(&self) -> Vec<String> {
        let mut w: Vec<String> = COMMANDS.iter().map(|c| (*c).to_owned()).collect();
        for (table, columns) in self.engine.catalog() {
            w.push(table.to_owned());
            w.extend(columns.iter().map(|c| c.name.to_owned()));
        }
        w.sort_unstable();
        w.dedup();
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flags::Flags;

    fn shell(mode: Mode) -> Shell {
        let engine = Engine::new(super::super::table_env(None, &Flags::default())).expect("engine");
        Shell::new(engine, mode, true)
    }

    fn out(s: &str) -> Outcome {
        Outcome::Output(s.to_owned())
    }

    #[test]
    fn help_and_quit() {
        let mut sh = shell(Mode::Pretty);
        assert_eq!(sh.command(".help"), out(HELP));
        assert!(HELP.contains(".schema [TABLE]") && HELP.contains(".quit"));
        assert_eq!(sh.command(".quit"), Outcome::Quit);
        assert_eq!(sh.command(".exit"), Outcome::Quit);
        assert_eq!(sh.feed("  .quit  "), Step::Quit);
        assert_eq!(
            sh.command(".frobnicate"),
            out("Error: unknown command .frobnicate; try .help\n")
        );
    }

    #[test]
    fn tab_completes_commands_tables_and_columns() {
        let sh = shell(Mode::Pretty);
        let words = sh.words();
        let c = |line: &str| complete(&words, line, line.len());
        assert_eq!(c(".ta"), (0, vec![".tables".to_owned()]));
        assert_eq!(
            c("SELECT * FROM osquery_e"),
            (
                14,
                vec!["osquery_events".to_owned(), "osquery_extensions".to_owned()]
            )
        );
        assert!(c("select cmdl").1.contains(&"cmdline".to_owned()));
        assert_eq!(c("SELECT "), (7, Vec::new()));
        // In the middle of a line: the word before the cursor.
        assert_eq!(complete(&words, "SELECT upt FROM x", 10).0, 7);
    }

    #[test]
    fn tables_lists_by_pattern() {
        let mut sh = shell(Mode::Pretty);
        assert_eq!(
            sh.command(".tables osquery_"),
            out(
                "  => osquery_events\n  => osquery_extensions\n  => osquery_flags\n  => osquery_info\n  => osquery_packs\n  => osquery_registry\n  => osquery_schedule\n"
            )
        );
        assert_eq!(sh.command(".tables no_such_thing"), out(""));
        // Without a pattern: every table, sorted, one per line.
        let Outcome::Output(all) = sh.command(".tables") else {
            panic!(".tables quit the shell");
        };
        let names: Vec<&str> = all
            .lines()
            .map(|l| l.strip_prefix("  => ").expect("line format"))
            .collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted);
        for t in ["processes", "process_events", "users", "mounts", "uptime"] {
            assert!(names.contains(&t), "{t} missing from {names:?}");
        }
    }

    #[test]
    fn schema_of_one_table() {
        let mut sh = shell(Mode::Pretty);
        let want = "CREATE TABLE uptime(\"days\" INTEGER, \"hours\" INTEGER, \"minutes\" INTEGER, \
                    \"seconds\" INTEGER, \"total_seconds\" BIGINT);\n";
        assert_eq!(sh.command(".schema uptime"), out(want));
        assert_eq!(sh.command(".schema UPTIME"), out(want));
        assert_eq!(
            sh.command(".schema groups"),
            out(
                "CREATE TABLE groups(\"gid\" BIGINT, \"gid_signed\" BIGINT, \"groupname\" TEXT, \
                 \"pid_with_namespace\" INTEGER HIDDEN);\n"
            )
        );
        assert_eq!(
            sh.command(".schema nosuch"),
            out("Error: no such table: nosuch\n")
        );
        // Without a name: one statement per table.
        let Outcome::Output(all) = sh.command(".schema") else {
            panic!(".schema quit the shell");
        };
        assert_eq!(all.lines().count(), sh.engine.table_names().len(), "{all}");
        assert!(
            all.lines()
                .all(|l| l.starts_with("CREATE TABLE ") && l.ends_with(");"))
        );
    }

    #[test]
    fn modes_change_the_output() {
        let mut sh = shell(Mode::Pretty);
        assert_eq!(sh.command(".mode"), out("current output mode: pretty\n"));
        assert_eq!(
            sh.feed("SELECT 1 AS a, 'x' AS b;"),
            Step::Output("+---+---+\n| a | b |\n+---+---+\n| 1 | x |\n+---+---+\n".into())
        );
        assert_eq!(sh.command(".mode csv"), out(""));
        assert_eq!(sh.command(".mode"), out("current output mode: csv\n"));
        assert_eq!(
            sh.feed("SELECT 1 AS a, 'x' AS b;"),
            Step::Output("a|b\n1|x\n".into())
        );
        assert_eq!(sh.command(".header off"), out(""));
        assert_eq!(
            sh.feed("SELECT 1 AS a, 'x' AS b;"),
            Step::Output("1|x\n".into())
        );
        assert_eq!(sh.command(".mode line"), out(""));
        assert_eq!(
            sh.feed("SELECT 1 AS a, 'x' AS bb;"),
            Step::Output(" a = 1\nbb = x\n".into())
        );
        assert_eq!(sh.command(".mode json"), out(""));
        assert_eq!(
            sh.feed("SELECT 1 AS a;"),
            Step::Output("[\n  {\n    \"a\": \"1\"\n  }\n]\n".into())
        );
        assert_eq!(
            sh.command(".mode xml"),
            out("Error: .mode takes one of: pretty, json, csv, line\n")
        );
        assert_eq!(sh.command(".mode"), out("current output mode: json\n"));
        assert_eq!(
            sh.command(".header maybe"),
            out("Error: .header takes on or off\n")
        );
    }

    #[test]
    fn statements_over_several_lines() {
        let mut sh = shell(Mode::Csv);
        assert_eq!(sh.feed(""), Step::Output(String::new()));
        assert_eq!(sh.feed("   "), Step::Output(String::new()));
        assert_eq!(sh.feed("-- just a comment"), Step::Output(String::new()));
        assert!(!sh.in_statement());
        assert_eq!(sh.feed("SELECT 2 AS n,"), Step::More);
        assert!(sh.in_statement());
        // A dot inside a statement is SQL, not a command.
        assert_eq!(sh.feed("  'a;b' AS s"), Step::More);
        assert_eq!(sh.feed(""), Step::More);
        assert_eq!(sh.feed(";"), Step::Output("n|s\n2|a;b\n".into()));
        assert!(!sh.in_statement());

        assert_eq!(sh.feed("SELECT"), Step::More);
        sh.cancel();
        assert!(!sh.in_statement());
        assert_eq!(sh.feed("SELECT 3 AS n;"), Step::Output("n\n3\n".into()));
    }

    #[test]
    fn sql_errors_are_reported_and_the_shell_goes_on() {
        let mut sh = shell(Mode::Csv);
        assert_eq!(
            sh.feed("SELECT * FROM no_such_table;"),
            Step::Error("no such table: no_such_table".into())
        );
        assert!(!sh.in_statement());
        assert_eq!(
            sh.feed("SELECT count(*) AS n FROM users WHERE uid = 0;"),
            Step::Output("n\n1\n".into())
        );
    }
}
