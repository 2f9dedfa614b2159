//! Shared argument parsing for the load generators behind `cargo xtask bench`.
//!
//! Each binary prints its result as one line of `key=value` pairs, so `cargo xtask bench` can
//! read it without a JSON parser.

use anyhow::{Context as _, Result, bail};

/// `--name VALUE` or `--name=VALUE` arguments, every name from `known`.
#[derive(Debug, Default)]
pub struct Args {
    pairs: Vec<(String, String)>,
}

impl Args {
    pub fn parse(args: &[String], known: &[&str], usage: &str) -> Result<Self> {
        let mut pairs = Vec::new();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let (name, value) = match a.split_once('=') {
                Some((n, v)) => (n.to_owned(), v.to_owned()),
                None => {
                    let v = it
                        .next()
                        .with_context(|| format!("{a} needs a value; {usage}"))?;
                    (a.clone(), v.clone())
                }
            };
            let Some(bare) = name.strip_prefix("--") else {
                bail!("unexpected argument {name:?}; {usage}");
            };
            if !known.contains(&bare) {
                bail!("unknown argument {name:?}; {usage}");
            }
            pairs.push((bare.to_owned(), value));
        }
        Ok(Self { pairs })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// A number, or `default` when the argument is absent.
    pub fn num<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| anyhow::anyhow!("--{name} takes a number, not {v:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn parses_both_forms_and_rejects_unknown() {
        let a = Args::parse(
            &strings(&["--secs", "2.5", "--file=/tmp/x"]),
            &["secs", "file"],
            "u",
        )
        .expect("parses");
        assert_eq!(a.num::<f64>("secs", 1.0).expect("num"), 2.5);
        assert_eq!(a.get("file"), Some("/tmp/x"));
        assert_eq!(a.num::<u64>("rate", 7).expect("default"), 7);
        assert!(Args::parse(&strings(&["--bogus", "1"]), &["secs"], "u").is_err());
        assert!(Args::parse(&strings(&["--secs"]), &["secs"], "u").is_err());
        assert!(
            Args::parse(&strings(&["--secs=x"]), &["secs"], "u")
                .expect("parses")
                .num::<f64>("secs", 1.0)
                .is_err()
        );
    }
}
