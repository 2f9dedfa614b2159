//! `osprey shell`: interactive SQL with history, dot-commands and multi-line statements.

use rustyline::{DefaultEditor, error::ReadlineError};

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
}

impl std::fmt::Debug for Shell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shell")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

/// What a line of input did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Output(String),
    Quit,
}

impl Shell {
    pub fn new(engine: Engine, mode: Mode, header: bool) -> Self {
        Self {
            engine,
            mode,
            header,
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
                for t in self.engine.table_names() {
                    if arg.is_none_or(|p| t.contains(p)) {
                        s.push_str(&format!("  => {t}\n"));
                    }
                }
                s
            }
            ".schema" => {
                let mut s = String::new();
                for t in self.engine.table_names() {
                    if arg.is_none_or(|a| a == t)
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
            ".mode" => match arg.and_then(Mode::parse) {
                Some(m) => {
                    self.mode = m;
                    String::new()
                }
                None => "Error: .mode takes one of: pretty, json, csv, line\n".to_owned(),
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
        let mut ed = DefaultEditor::new()?;
        let history =
            std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".osprey_history"));
        if let Some(h) = &history {
            let _ = ed.load_history(h);
        }
        println!("Using a virtual database. Need help, type '.help'");
        let mut pending = String::new();
        loop {
            let prompt = if pending.is_empty() {
                "osprey> "
            } else {
                "    ...> "
            };
            match ed.readline(prompt) {
                Ok(line) => {
                    let trimmed = line.trim();
                    if pending.is_empty() && trimmed.starts_with('.') {
                        let _ = ed.add_history_entry(trimmed);
                        match self.command(trimmed) {
                            Outcome::Quit => break,
                            Outcome::Output(s) => print!("{s}"),
                        }
                        continue;
                    }
                    if !pending.is_empty() {
                        pending.push('\n');
                    }
                    pending.push_str(&line);
                    if crate::sql::vtab::is_complete_statement(&pending) {
                        let _ = ed.add_history_entry(pending.trim());
                        match self.sql(&pending) {
                            Ok(s) => print!("{s}"),
                            Err(e) => eprintln!("Error: {e}"),
                        }
                        pending.clear();
                    }
                }
                Err(ReadlineError::Interrupted) => pending.clear(),
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
