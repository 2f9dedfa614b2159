//! A sample extension on `osprey-sdk`, started as osquery starts extensions:
//!
//! ```text
//! osprey-example-extension --socket /var/osquery/osquery.em --timeout 3 --interval 3
//! ```
//!
//! It registers the table `rust_numbers` (n from 1 to 1000, its square, and how many rows
//! the call generated: constraints on `n` narrow what is generated, which shows that the
//! manager passes them on) and the logger plugin `rust_example_logger`, which appends each
//! line it gets to the file `$OSPREY_EXAMPLE_LOG` (standard error when unset), and the
//! distributed plugin `rust_example_distributed`: when the file `$OSPREY_EXAMPLE_QUERIES`
//! exists, its content (osquery's `{"queries": {id: sql}}`) is handed out once and the file
//! removed; the answers are appended to `$OSPREY_EXAMPLE_LOG` as `Distributed` lines.
#![forbid(unsafe_code)]

use std::io::Write as _;

use osprey_sdk::{
    context::{Context, Op},
    server::{Column, ColumnType, Distributed, Extension, LogKind, Logger, Options, Row, Table},
};

/// The numbers 1..=1000.
struct Numbers;

const LAST: i64 = 1000;

impl Table for Numbers {
    fn name(&self) -> String {
        "rust_numbers".into()
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            Column::new("n", ColumnType::Integer),
            Column::new("square", ColumnType::BigInt),
            Column::new("generated", ColumnType::Integer),
        ]
    }

    fn generate(&self, ctx: &Context) -> Result<Vec<Row>, String> {
        // The range the constraints on n leave; one that is not a number narrows nothing
        // (SQLite compares again anyway).
        let (mut low, mut high) = (1, LAST);
        for c in ctx.on("n") {
            let Ok(v) = c.expr.trim().parse::<i64>() else {
                continue;
            };
            match c.op {
                Op::Eq => (low, high) = (low.max(v), high.min(v)),
                Op::Gt => low = low.max(v.saturating_add(1)),
                Op::Ge => low = low.max(v),
                Op::Lt => high = high.min(v.saturating_sub(1)),
                Op::Le => high = high.min(v),
                _ => {}
            }
        }
        let count = (high - low + 1).max(0);
        Ok((low..=high)
            .map(|n| {
                Row::from([
                    ("n".to_owned(), n.to_string()),
                    ("square".to_owned(), (n * n).to_string()),
                    ("generated".to_owned(), count.to_string()),
                ])
            })
            .collect())
    }
}

/// Appends `<kind>\t<line>` to `$OSPREY_EXAMPLE_LOG` (standard error when unset).
fn append(kind: &str, text: &str) -> Result<(), String> {
    let line = format!("{kind}\t{}\n", text.trim_end());
    match std::env::var_os("OSPREY_EXAMPLE_LOG") {
        Some(path) => std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(line.as_bytes()))
            .map_err(|e| format!("{}: {e}", std::path::Path::new(&path).display())),
        None => std::io::stderr()
            .write_all(line.as_bytes())
            .map_err(|e| e.to_string()),
    }
}

/// Every line it gets, appended by [`append`].
struct FileLogger;

impl Logger for FileLogger {
    fn name(&self) -> String {
        "rust_example_logger".into()
    }

    fn log(&self, kind: LogKind, text: &str) -> Result<(), String> {
        append(&format!("{kind:?}"), text)
    }
}

/// Queries from the file `$OSPREY_EXAMPLE_QUERIES`, each file handed out once.
struct QueryFile;

impl Distributed for QueryFile {
    fn name(&self) -> String {
        "rust_example_distributed".into()
    }

    fn get_queries(&self) -> Result<String, String> {
        let Some(path) = std::env::var_os("OSPREY_EXAMPLE_QUERIES") else {
            return Ok("{}".to_owned());
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                std::fs::remove_file(&path).map_err(|e| e.to_string())?;
                Ok(text)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok("{}".to_owned()),
            Err(e) => Err(e.to_string()),
        }
    }

    fn write_results(&self, results: &str) -> Result<(), String> {
        append("Distributed", results)
    }
}

fn main() -> std::process::ExitCode {
    let options = match Options::from_args(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("osprey-example-extension: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let ext = Extension::new("rust_example", env!("CARGO_PKG_VERSION"))
        .with_table(Numbers)
        .with_logger(FileLogger)
        .with_distributed(QueryFile);
    match ext.run(&options) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("osprey-example-extension: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
