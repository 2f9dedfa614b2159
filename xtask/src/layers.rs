//! The layering check run first by `cargo xtask lint`: which top-level module of `agent/src`
//! may import which, as declared in ARCHITECTURE.md.
//!
//! # Layers and rules
//!
//! A *layer* is a top-level module of `agent/src`: a file `agent/src/NAME.rs` or a folder
//! `agent/src/NAME/` holding at least one `.rs` file. `lib.rs` and `main.rs` are the crate root
//! and exempt, and so is `agent/src/bin/` (cargo's further binary crates). Every layer needs
//! exactly one rule in ARCHITECTURE.md, a sentence of one of these two forms:
//!
//! ```text
//! Architecture invariant: layer `NAME` imports nothing of the crate.
//! Architecture invariant: layer `NAME` imports only `A`, `B`, `C`.
//! ```
//!
//! After `only` come one or more backticked module names separated by commas and/or `and`
//! (`` `A` ``, `` `A` and `B` ``, `` `A`, `B`, `C` ``, `` `A`, `B` and `C` ``,
//! `` `A`, `B`, and `C` ``); the sentence ends with a period. It may be a Markdown list item
//! (`- Architecture invariant: ...`) and may wrap onto the item's indented continuation lines;
//! text after the period is ignored, and so are fenced code blocks. A sentence that starts with
//! ``Architecture invariant: layer ` `` but does not parse is a violation, so a typo cannot
//! silently drop a rule. Other "Architecture invariant:" lines are prose and ignored.
//!
//! # Checks
//!
//! - every layer has a rule, every rule names existing layers, no layer has two rules;
//! - the rules form no cycle (a layer importing itself is always fine);
//! - every `crate::X` path in a layer's files (use trees like
//!   `use crate::{a::{b, c}, d, self as e};` over several lines, and inline paths such as
//!   `crate::sys::now_ns()`) names the file's own layer or one its rule allows; `super::` and
//!   `self::super::` chains are resolved against the file's module path (`a/b/c.rs` is `a::b::c`,
//!   `a/b/mod.rs` is `a::b`, an inline `mod tests { .. }` is one level deeper), and a chain that
//!   climbs to the crate root names the layer in its next segment. A `crate::X` where `X` is not
//!   a top-level module (a `#[macro_export]` macro, a re-export in `lib.rs`, `crate::*`) is
//!   reported as unknown;
//! - within each folder below `agent/src`, the files (and sub-folders, taken as a whole) import
//!   each other without cycles. `mod.rs` is left out: a parent using its children, and children
//!   using the parent's items through `super::Item`, is normal.
//!
//! Comments, string literals (raw strings included) and char literals are blanked before the
//! scan, so doc links and messages that mention `crate::x` do not count; lifetimes stay code.
//! `#[cfg(test)]` code counts like any other code.
//!
//! Not followed: `use crate as c;` aliases, `#[path]` attributes, paths built by macros.
//! `$crate::x` inside `macro_rules!` counts as an import of the file that defines the macro.

use std::{
    collections::{BTreeMap, BTreeSet, VecDeque},
    fmt, fs,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result, bail};

/// The crate whose layering is checked, relative to the workspace root.
const SRC: &str = "agent/src";

/// The sentence that starts a layer rule in ARCHITECTURE.md.
const RULE_START: &str = "Architecture invariant: layer `";

/// A layer rule: `layer` may import `allowed` (empty: nothing of the crate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub layer: String,
    pub allowed: Vec<String>,
    /// 1-based line in ARCHITECTURE.md where the rule's sentence starts.
    pub line: usize,
}

/// One broken layering rule; `Display` gives the message `cargo xtask lint` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// A file of `layer` imports `crate::target`, which its rule does not allow.
    ForbiddenImport {
        file: String,
        line: usize,
        layer: String,
        target: String,
        allowed: Vec<String>,
    },
    /// A file of `layer` imports `crate::path`, which is no top-level module.
    UnknownImport {
        file: String,
        line: usize,
        layer: String,
        path: String,
    },
    /// A top-level module without a rule.
    NoRule { module: String },
    /// A rule names (as its layer or as allowed) a module that does not exist.
    RuleForUnknownModule { line: usize, module: String },
    /// A second rule for the same layer.
    DuplicateRule {
        line: usize,
        layer: String,
        first_line: usize,
    },
    /// A sentence that starts like a rule but does not parse.
    MalformedRule { line: usize, reason: String },
    /// The rules allow a cycle of layers; the first name is repeated at the end.
    RuleCycle { cycle: Vec<String> },
    /// Sibling files of `folder` import each other; the first name is repeated at the end.
    SiblingCycle { folder: String, cycle: Vec<String> },
    /// A file or folder that could not be read.
    Unreadable { path: String, error: String },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ForbiddenImport {
                file,
                line,
                layer,
                target,
                allowed,
            } => {
                let allowed = if allowed.is_empty() {
                    "nothing".to_string()
                } else {
                    allowed.join(", ")
                };
                write!(
                    f,
                    "{file}:{line}: layer `{layer}` imports `crate::{target}` (allowed: {allowed})"
                )
            }
            Self::UnknownImport {
                file,
                line,
                layer,
                path,
            } => write!(
                f,
                "{file}:{line}: layer `{layer}` imports `crate::{path}`, which is unknown \
                 (not a top-level module of {SRC})"
            ),
            Self::NoRule { module } => {
                write!(f, "module `{module}` has no layer rule in ARCHITECTURE.md")
            }
            Self::RuleForUnknownModule { line, module } => write!(
                f,
                "ARCHITECTURE.md:{line}: the rule names module `{module}`, which does not exist \
                 in {SRC}"
            ),
            Self::DuplicateRule {
                line,
                layer,
                first_line,
            } => write!(
                f,
                "ARCHITECTURE.md:{line}: a second rule for layer `{layer}` (the first is on line \
                 {first_line})"
            ),
            Self::MalformedRule { line, reason } => {
                write!(f, "ARCHITECTURE.md:{line}: unreadable layer rule: {reason}")
            }
            Self::RuleCycle { cycle } => {
                write!(f, "the layer rules form a cycle: {}", cycle.join(" -> "))
            }
            Self::SiblingCycle { folder, cycle } => {
                if let [a, b, _] = cycle.as_slice() {
                    write!(f, "{folder}: {a} and {b} import each other")
                } else {
                    write!(
                        f,
                        "{folder}: files import each other: {}",
                        cycle.join(" -> ")
                    )
                }
            }
            Self::Unreadable { path, error } => write!(f, "cannot read {path}: {error}"),
        }
    }
}

/// `cargo xtask lint`'s layering step: checks the real tree against ARCHITECTURE.md.
pub fn run() -> Result<()> {
    let root = crate::root();
    let md_path = root.join("ARCHITECTURE.md");
    let md = fs::read_to_string(&md_path)
        .with_context(|| format!("could not read {}", md_path.display()))?;
    let violations = check(&root, &md);
    if violations.is_empty() {
        return Ok(());
    }
    let mut msg = format!(
        "layering check failed, {} violation(s) (rules in ARCHITECTURE.md, format in \
         xtask/src/layers.rs):",
        violations.len()
    );
    for v in &violations {
        msg.push_str(&format!("\n  {v}"));
    }
    if violations
        .iter()
        .any(|v| matches!(v, Violation::NoRule { .. }))
    {
        msg.push_str("\nimports between top-level modules as found now:");
        for (module, targets) in import_graph(&root) {
            msg.push_str(&format!("\n  {}", graph_line(&module, &targets)));
        }
    }
    bail!("{msg}")
}

/// `a -> b, c`, or `a -> (nothing)`.
pub fn graph_line(module: &str, targets: &BTreeSet<String>) -> String {
    if targets.is_empty() {
        format!("{module} -> (nothing)")
    } else {
        let targets: Vec<&str> = targets.iter().map(String::as_str).collect();
        format!("{module} -> {}", targets.join(", "))
    }
}

/// Checks the crate `root/agent/src` against the layer rules in `architecture_md` (the text of
/// ARCHITECTURE.md). Returns every violation: rule problems first, then imports in file and line
/// order, then sibling cycles.
pub fn check(root: &Path, architecture_md: &str) -> Vec<Violation> {
    let (rules, mut violations) = parse_rules(architecture_md);
    let src = root.join(SRC);
    let modules = match top_level_modules(&src) {
        Ok(modules) => modules,
        Err(e) => {
            violations.push(Violation::Unreadable {
                path: SRC.into(),
                error: e.to_string(),
            });
            return violations;
        }
    };

    // The rules themselves.
    let mut by_layer: BTreeMap<&str, &Rule> = BTreeMap::new();
    for rule in &rules {
        if let Some(first) = by_layer.get(rule.layer.as_str()) {
            violations.push(Violation::DuplicateRule {
                line: rule.line,
                layer: rule.layer.clone(),
                first_line: first.line,
            });
            continue;
        }
        by_layer.insert(rule.layer.as_str(), rule);
        for name in std::iter::once(&rule.layer).chain(&rule.allowed) {
            if !modules.contains(name) {
                violations.push(Violation::RuleForUnknownModule {
                    line: rule.line,
                    module: name.clone(),
                });
            }
        }
    }
    for module in &modules {
        if !by_layer.contains_key(module.as_str()) {
            violations.push(Violation::NoRule {
                module: module.clone(),
            });
        }
    }
    let rule_graph: BTreeMap<String, BTreeSet<String>> = by_layer
        .values()
        .map(|r| {
            let targets = r.allowed.iter().filter(|a| **a != r.layer).cloned();
            (r.layer.clone(), targets.collect())
        })
        .collect();
    for cycle in cycles(&rule_graph) {
        violations.push(Violation::RuleCycle { cycle });
    }

    // The imports.
    let (files, unreadable) = scan(&src);
    violations.extend(unreadable);
    for file in &files {
        let Some(layer) = file.module.first() else {
            continue;
        };
        // A layer without a rule is reported once above, not at every import.
        let Some(rule) = by_layer.get(layer.as_str()) else {
            continue;
        };
        let mut seen = BTreeSet::new();
        for r in &file.refs {
            let Some(top) = r.path.first() else {
                if r.glob {
                    violations.push(Violation::UnknownImport {
                        file: file.rel.clone(),
                        line: r.line,
                        layer: layer.clone(),
                        path: "*".into(),
                    });
                }
                continue;
            };
            if top == layer || !seen.insert((r.line, top.clone())) {
                continue;
            }
            if !modules.contains(top) {
                violations.push(Violation::UnknownImport {
                    file: file.rel.clone(),
                    line: r.line,
                    layer: layer.clone(),
                    path: top.clone(),
                });
            } else if !rule.allowed.contains(top) {
                violations.push(Violation::ForbiddenImport {
                    file: file.rel.clone(),
                    line: r.line,
                    layer: layer.clone(),
                    target: top.clone(),
                    allowed: rule.allowed.clone(),
                });
            }
        }
    }

    violations.extend(sibling_cycles(&files));
    violations
}

/// The imports between top-level modules of `root/agent/src` (the file's own layer and unknown
/// names left out), for writing the rules. Unreadable files are skipped.
pub fn import_graph(root: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let src = root.join(SRC);
    let modules = top_level_modules(&src).unwrap_or_default();
    let mut graph: BTreeMap<String, BTreeSet<String>> = modules
        .iter()
        .map(|m| (m.clone(), BTreeSet::new()))
        .collect();
    for file in scan(&src).0 {
        let Some(layer) = file.module.first() else {
            continue;
        };
        for r in &file.refs {
            if let Some(top) = r.path.first()
                && top != layer
                && modules.contains(top)
            {
                graph.entry(layer.clone()).or_default().insert(top.clone());
            }
        }
    }
    graph
}

// ---------------------------------------------------------------------------------------------
// ARCHITECTURE.md

/// The layer rules in `md`, and a violation for every rule-like sentence that does not parse.
/// See the module documentation for the accepted forms.
pub fn parse_rules(md: &str) -> (Vec<Rule>, Vec<Violation>) {
    let mut rules = Vec::new();
    let mut violations = Vec::new();
    for (line, text) in logical_lines(md) {
        let mut rest = text.as_str();
        while let Some(at) = rest.find(RULE_START) {
            let sentence = &rest[at + RULE_START.len()..];
            match parse_rule(sentence) {
                Ok((layer, allowed, tail)) => {
                    rules.push(Rule {
                        layer,
                        allowed,
                        line,
                    });
                    rest = tail;
                }
                Err(reason) => {
                    violations.push(Violation::MalformedRule { line, reason });
                    rest = sentence;
                }
            }
        }
    }
    (rules, violations)
}

/// Markdown lines outside fenced code blocks, a list item (`- ...`) joined with its indented
/// continuation lines, whitespace runs collapsed to one space; each with its 1-based first line.
fn logical_lines(md: &str) -> Vec<(usize, String)> {
    let mut out: Vec<(usize, String)> = Vec::new();
    let mut in_fence = false;
    let mut in_item = false;
    for (i, raw) in md.lines().enumerate() {
        let trimmed = raw.trim();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            in_fence = !in_fence;
            in_item = false;
            continue;
        }
        if in_fence {
            continue;
        }
        let continues = in_item
            && !trimmed.is_empty()
            && raw.starts_with(char::is_whitespace)
            && !trimmed.starts_with("- ");
        let collapsed = trimmed.split_whitespace().collect::<Vec<_>>().join(" ");
        match out.last_mut() {
            Some((_, text)) if continues => {
                text.push(' ');
                text.push_str(&collapsed);
            }
            _ => {
                in_item = trimmed.starts_with("- ");
                out.push((i + 1, collapsed));
            }
        }
    }
    out
}

/// Parses what follows ``Architecture invariant: layer ` ``: the layer, its allowed layers, and
/// the text after the sentence's period.
fn parse_rule(s: &str) -> Result<(String, Vec<String>, &str), String> {
    let (layer, rest) = name_then_backtick(s).ok_or("expected `NAME` after \"layer\"")?;
    let rest = rest
        .strip_prefix(" imports ")
        .ok_or_else(|| format!("expected \"imports\" after layer `{layer}`"))?;
    if let Some(tail) = rest.strip_prefix("nothing of the crate.") {
        return Ok((layer, Vec::new(), tail));
    }
    let mut rest = rest.strip_prefix("only ").ok_or_else(|| {
        format!("layer `{layer}`: expected \"nothing of the crate.\" or \"only `A`, `B`.\"")
    })?;
    let mut allowed = Vec::new();
    loop {
        let after_tick = rest
            .strip_prefix('`')
            .ok_or_else(|| format!("layer `{layer}`: expected a backticked name in the list"))?;
        let (name, after) = name_then_backtick(after_tick)
            .ok_or_else(|| format!("layer `{layer}`: expected a backticked name in the list"))?;
        allowed.push(name);
        if let Some(tail) = after.strip_prefix('.') {
            return Ok((layer, allowed, tail));
        }
        rest = if let Some(r) = after.strip_prefix(", and ") {
            r
        } else if let Some(r) = after.strip_prefix(", ") {
            r
        } else if let Some(r) = after.strip_prefix(" and ") {
            r
        } else {
            return Err(format!(
                "layer `{layer}`: expected \",\", \"and\" or the closing \".\" after `{name}`",
                name = allowed.last().map_or("", String::as_str)
            ));
        };
    }
}

/// `NAME` then a backtick at the start of `s`: the name and what follows the backtick.
fn name_then_backtick(s: &str) -> Option<(String, &str)> {
    let end = s.find('`')?;
    let name = &s[..end];
    let valid = !name.is_empty() && name.chars().all(|c| c == '_' || c.is_ascii_alphanumeric());
    valid.then(|| (name.to_string(), &s[end + 1..]))
}

// ---------------------------------------------------------------------------------------------
// The source tree

/// One scanned `.rs` file of a layer.
#[derive(Debug)]
struct SourceFile {
    /// `agent/src/...`, with `/`.
    rel: String,
    /// Path components below `agent/src` (`["storage", "mod.rs"]`).
    components: Vec<String>,
    /// Its module path (`storage::codec` is `["storage", "codec"]`).
    module: Vec<String>,
    refs: Vec<Ref>,
}

/// A path into the crate, made absolute (segments after `crate`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Ref {
    path: Vec<String>,
    /// The path ends in `::*`.
    glob: bool,
    line: usize,
}

/// The layers: `NAME.rs` files and folders with `.rs` files directly in `src`.
fn top_level_modules(src: &Path) -> std::io::Result<BTreeSet<String>> {
    let mut modules = BTreeSet::new();
    for entry in fs::read_dir(src)? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if path.is_dir() {
            if name != "bin" && !rs_files(&path)?.is_empty() {
                modules.insert(name.to_string());
            }
        } else if let Some(stem) = name.strip_suffix(".rs")
            && stem != "lib"
            && stem != "main"
        {
            modules.insert(stem.to_string());
        }
    }
    Ok(modules)
}

/// Every `.rs` file below `dir`, sorted.
fn rs_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Reads and scans every layer file below `src`; unreadable ones become violations.
fn scan(src: &Path) -> (Vec<SourceFile>, Vec<Violation>) {
    let mut files = Vec::new();
    let mut violations = Vec::new();
    let paths = match rs_files(src) {
        Ok(paths) => paths,
        Err(e) => {
            violations.push(Violation::Unreadable {
                path: SRC.into(),
                error: e.to_string(),
            });
            return (files, violations);
        }
    };
    for path in paths {
        let Ok(below) = path.strip_prefix(src) else {
            continue;
        };
        let components: Option<Vec<String>> = below
            .components()
            .map(|c| c.as_os_str().to_str().map(str::to_string))
            .collect();
        let Some(components) = components else {
            violations.push(Violation::Unreadable {
                path: path.display().to_string(),
                error: "the path is not UTF-8".into(),
            });
            continue;
        };
        let Some(module) = module_path(&components) else {
            continue;
        };
        let rel = format!("{SRC}/{}", components.join("/"));
        match fs::read_to_string(&path) {
            Ok(text) => {
                let refs = references(&tokenize(&strip(&text)), &module);
                files.push(SourceFile {
                    rel,
                    components,
                    module,
                    refs,
                });
            }
            Err(e) => violations.push(Violation::Unreadable {
                path: rel,
                error: e.to_string(),
            }),
        }
    }
    (files, violations)
}

/// The module path of a file given by its components below `src`; `None` for the crate roots
/// (`lib.rs`, `main.rs`, `bin/`).
fn module_path(components: &[String]) -> Option<Vec<String>> {
    let (file, dirs) = components.split_last()?;
    let stem = file.strip_suffix(".rs")?;
    if dirs.is_empty() && matches!(stem, "lib" | "main" | "mod") {
        return None;
    }
    if dirs.first().is_some_and(|d| d == "bin") {
        return None;
    }
    let mut module = dirs.to_vec();
    if stem != "mod" {
        module.push(stem.to_string());
    }
    Some(module)
}

/// Cycles between the siblings of each folder below `src` (not `src` itself: its children are
/// the layers, which the rules order). A sibling is a file or a whole sub-folder; `mod.rs` is
/// left out.
fn sibling_cycles(files: &[SourceFile]) -> Vec<Violation> {
    let folders: BTreeSet<&[String]> = files
        .iter()
        .flat_map(|f| (1..f.components.len()).map(|n| &f.components[..n]))
        .collect();
    let mut violations = Vec::new();
    for folder in folders {
        let depth = folder.len();
        // The sibling a file belongs to: its component right below `folder`.
        let sibling = |f: &SourceFile| -> Option<String> {
            if f.components.len() <= depth || f.components[..depth] != *folder {
                return None;
            }
            let c = &f.components[depth];
            if f.components.len() == depth + 1 {
                (c != "mod.rs").then(|| c.trim_end_matches(".rs").to_string())
            } else {
                Some(c.clone())
            }
        };
        let members: BTreeMap<String, Vec<&SourceFile>> =
            files.iter().fold(BTreeMap::new(), |mut m, f| {
                if let Some(s) = sibling(f) {
                    m.entry(s).or_default().push(f);
                }
                m
            });
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (name, members_files) in &members {
            let targets = graph.entry(name.clone()).or_default();
            for r in members_files.iter().flat_map(|f| &f.refs) {
                if r.path.len() > depth
                    && r.path[..depth] == *folder
                    && r.path[depth] != *name
                    && members.contains_key(&r.path[depth])
                {
                    targets.insert(r.path[depth].clone());
                }
            }
        }
        let display = |name: &String| -> String {
            let as_file = members
                .get(name)
                .is_some_and(|fs| fs.iter().any(|f| f.components.len() == depth + 1));
            if as_file {
                format!("{name}.rs")
            } else {
                format!("{name}/")
            }
        };
        for cycle in cycles(&graph) {
            violations.push(Violation::SiblingCycle {
                folder: format!("{SRC}/{}", folder.join("/")),
                cycle: cycle.iter().map(display).collect(),
            });
        }
    }
    violations
}

/// One cycle per strongly connected component of `graph` with more than one node (self loops
/// are ignored): a shortest cycle through the component's smallest node, that node repeated at
/// the end.
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    let successors = |n: &str| -> Vec<&String> {
        graph
            .get(n)
            .map(|s| s.iter().filter(|t| *t != n).collect())
            .unwrap_or_default()
    };
    let reach = |start: &String| -> BTreeSet<&String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![start];
        while let Some(n) = todo.pop() {
            for t in successors(n) {
                if seen.insert(t) {
                    todo.push(t);
                }
            }
        }
        seen
    };
    let reachable: BTreeMap<&String, BTreeSet<&String>> =
        graph.keys().map(|n| (n, reach(n))).collect();
    let mut done: BTreeSet<&String> = BTreeSet::new();
    let mut out = Vec::new();
    for n in graph.keys() {
        if done.contains(n) || !reachable.get(n).is_some_and(|r| r.contains(n)) {
            continue;
        }
        let component: BTreeSet<&String> = reachable
            .get(n)
            .into_iter()
            .flatten()
            .copied()
            .filter(|m| reachable.get(m).is_some_and(|r| r.contains(n)))
            .collect();
        done.extend(component.iter().copied());
        // Breadth-first from `n` inside the component, back to `n`.
        let mut parent: BTreeMap<&String, &String> = BTreeMap::new();
        let mut queue = VecDeque::from([n]);
        'search: while let Some(u) = queue.pop_front() {
            for v in successors(u) {
                if !component.contains(v) {
                    continue;
                }
                if v == n {
                    let mut back = Vec::new();
                    let mut at = u;
                    while at != n {
                        back.push(at.clone());
                        at = parent.get(at).copied().unwrap_or(n);
                    }
                    let mut cycle = vec![n.clone()];
                    cycle.extend(back.into_iter().rev());
                    cycle.push(n.clone());
                    out.push(cycle);
                    break 'search;
                }
                if v != n && !parent.contains_key(v) {
                    parent.insert(v, u);
                    queue.push_back(v);
                }
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Rust source

/// `src` with comments, string literals and char literals replaced by spaces (newlines kept, so
/// line numbers stay). Block comments nest; raw strings (`r"…"`, `r#"…"#`, `br`, `cr`) end at the
/// matching number of `#`; `'a` without a closing quote is a lifetime or label and stays.
fn strip(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let blank = |out: &mut String, chars: &[char]| {
        out.extend(chars.iter().map(|&ch| if ch == '\n' { '\n' } else { ' ' }));
    };
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        let next = c.get(i + 1).copied();
        let end = if ch == '/' && next == Some('/') {
            Some(
                c[i..]
                    .iter()
                    .position(|&x| x == '\n')
                    .map_or(c.len(), |p| i + p),
            )
        } else if ch == '/' && next == Some('*') {
            let mut depth = 1;
            let mut j = i + 2;
            while j < c.len() && depth > 0 {
                match (c[j], c.get(j + 1)) {
                    ('/', Some('*')) => (depth, j) = (depth + 1, j + 2),
                    ('*', Some('/')) => (depth, j) = (depth - 1, j + 2),
                    _ => j += 1,
                }
            }
            Some(j)
        } else if ch == '"' {
            Some(string_end(&c, i + 1))
        } else if ch == '\'' {
            char_literal_end(&c, i)
        } else if is_ident_start(ch) {
            let mut j = i;
            while j < c.len() && is_ident_continue(c[j]) {
                j += 1;
            }
            let word: String = c[i..j].iter().collect();
            let raw = if matches!(word.as_str(), "r" | "br" | "cr") {
                raw_string_end(&c, j)
            } else {
                None
            };
            if raw.is_none() {
                out.push_str(&word);
                i = j;
                continue;
            }
            raw
        } else {
            None
        };
        match end {
            Some(end) => {
                blank(&mut out, &c[i..end]);
                i = end;
            }
            None => {
                out.push(ch);
                i += 1;
            }
        }
    }
    out
}

/// The end (exclusive) of a `"…"` string whose contents start at `i`.
fn string_end(c: &[char], mut i: usize) -> usize {
    while i < c.len() {
        match c[i] {
            '\\' => i += 2,
            '"' => return i + 1,
            _ => i += 1,
        }
    }
    c.len()
}

/// After a raw string prefix (`r`, `br`, `cr`) ending before `i`: the end of the raw string, or
/// `None` if no `#*"` follows (a raw identifier `r#name`, or just an identifier).
fn raw_string_end(c: &[char], i: usize) -> Option<usize> {
    let hashes = c[i..].iter().take_while(|&&x| x == '#').count();
    if c.get(i + hashes) != Some(&'"') {
        return None;
    }
    let mut j = i + hashes + 1;
    while j < c.len() {
        if c[j] == '"'
            && c[j + 1..]
                .iter()
                .take(hashes)
                .filter(|&&x| x == '#')
                .count()
                == hashes
        {
            return Some(j + 1 + hashes);
        }
        j += 1;
    }
    Some(c.len())
}

/// At a `'`: the end of a char literal (`'x'`, `'\n'`, `'\u{1F600}'`, `'\''`), or `None` for a
/// lifetime or label.
fn char_literal_end(c: &[char], i: usize) -> Option<usize> {
    match (c.get(i + 1), c.get(i + 2)) {
        (Some('\\'), Some(_)) => {
            // An escape: the closing quote comes within a few characters on the same line.
            let from = i + 3;
            let close = c[from.min(c.len())..]
                .iter()
                .take(10)
                .take_while(|&&x| x != '\n')
                .position(|&x| x == '\'')?;
            Some(from + close + 1)
        }
        (Some(&x), Some('\'')) if x != '\n' => Some(i + 3),
        _ => None,
    }
}

fn is_ident_start(ch: char) -> bool {
    ch == '_' || ch.is_alphabetic()
}

fn is_ident_continue(ch: char) -> bool {
    ch == '_' || ch.is_alphanumeric()
}

/// A token of stripped Rust source.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    /// An identifier or keyword (`r#` of a raw identifier removed).
    Ident(String),
    /// `::`
    PathSep,
    /// Any other character (numbers become `'0'`).
    Punct(char),
}

#[derive(Debug)]
struct Token {
    tok: Tok,
    line: usize,
}

fn tokenize(stripped: &str) -> Vec<Token> {
    let c: Vec<char> = stripped.chars().collect();
    let mut tokens = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if is_ident_start(ch) || ch.is_ascii_digit() {
            let mut start = i;
            // A raw identifier: `r#name`.
            if ch == 'r'
                && c.get(i + 1) == Some(&'#')
                && c.get(i + 2).is_some_and(|&x| is_ident_start(x))
            {
                start = i + 2;
            }
            let mut j = start;
            while j < c.len() && is_ident_continue(c[j]) {
                j += 1;
            }
            let tok = if ch.is_ascii_digit() {
                Tok::Punct('0')
            } else {
                Tok::Ident(c[start..j].iter().collect())
            };
            tokens.push(Token { tok, line });
            i = j;
        } else if ch == ':' && c.get(i + 1) == Some(&':') {
            tokens.push(Token {
                tok: Tok::PathSep,
                line,
            });
            i += 2;
        } else {
            tokens.push(Token {
                tok: Tok::Punct(ch),
                line,
            });
            i += 1;
        }
    }
    tokens
}

fn is_ident(t: Option<&Token>, name: &str) -> bool {
    matches!(t, Some(Token { tok: Tok::Ident(s), .. }) if s == name)
}

fn is_sep(t: Option<&Token>) -> bool {
    matches!(
        t,
        Some(Token {
            tok: Tok::PathSep,
            ..
        })
    )
}

fn is_punct(t: Option<&Token>, ch: char) -> bool {
    matches!(t, Some(Token { tok: Tok::Punct(p), .. }) if *p == ch)
}

/// Every path into the crate in `tokens` (a file of module `file_module`), made absolute:
/// `crate::…`, `super::…` and `self::…` paths, use trees expanded. Inline `mod name { … }`
/// blocks (such as `mod tests`) add a level for `super`/`self`.
fn references(tokens: &[Token], file_module: &[String]) -> Vec<Ref> {
    let mut refs = Vec::new();
    // Inline modules we are in: name and the brace depth inside them.
    let mut scopes: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i];
        match &t.tok {
            Tok::Punct('{') => {
                depth += 1;
                i += 1;
            }
            Tok::Punct('}') => {
                if scopes.last().is_some_and(|(_, d)| *d == depth) {
                    scopes.pop();
                }
                depth = depth.saturating_sub(1);
                i += 1;
            }
            Tok::Ident(kw) if kw == "mod" => match (tokens.get(i + 1), tokens.get(i + 2)) {
                (
                    Some(Token {
                        tok: Tok::Ident(name),
                        ..
                    }),
                    next,
                ) if is_punct(next, '{') => {
                    depth += 1;
                    scopes.push((name.clone(), depth));
                    i += 3;
                }
                _ => i += 1,
            },
            Tok::Ident(kw)
                if matches!(kw.as_str(), "crate" | "super" | "self")
                    && is_sep(tokens.get(i + 1))
                    && !(i > 0 && is_sep(tokens.get(i - 1))) =>
            {
                let mut module = file_module.to_vec();
                module.extend(scopes.iter().map(|(name, _)| name.clone()));
                i = path_refs(tokens, i, module, &mut refs);
            }
            _ => i += 1,
        }
    }
    refs
}

/// Parses the path starting with `crate`, `super` or `self` at `start` in module `module`,
/// pushes its absolute paths, returns the index after it. A `super` above the crate root (not
/// valid Rust) yields nothing.
fn path_refs(
    tokens: &[Token],
    start: usize,
    mut module: Vec<String>,
    refs: &mut Vec<Ref>,
) -> usize {
    let line = tokens[start].line;
    let mut base = match &tokens[start].tok {
        Tok::Ident(kw) if kw == "crate" => Vec::new(),
        Tok::Ident(kw) if kw == "super" => {
            if module.pop().is_none() {
                return start + 1;
            }
            module
        }
        _ => module,
    };
    let mut i = start + 1;
    while is_sep(tokens.get(i)) && is_ident(tokens.get(i + 1), "super") {
        if base.pop().is_none() {
            return i + 2;
        }
        i += 2;
    }
    path_tail(tokens, i, base, line, refs)
}

/// After a path `prefix` (absolute), at `i`: `::segment…`, `::*` or `::{…}`, or the end.
fn path_tail(
    tokens: &[Token],
    mut i: usize,
    mut path: Vec<String>,
    mut line: usize,
    refs: &mut Vec<Ref>,
) -> usize {
    loop {
        if !is_sep(tokens.get(i)) {
            refs.push(Ref {
                path,
                glob: false,
                line,
            });
            return i;
        }
        match tokens.get(i + 1) {
            Some(Token {
                tok: Tok::Ident(seg),
                line: seg_line,
            }) => {
                if path.is_empty() {
                    // Report the line naming the layer.
                    line = *seg_line;
                }
                path.push(seg.clone());
                i += 2;
            }
            Some(Token {
                tok: Tok::Punct('*'),
                line: star_line,
            }) => {
                refs.push(Ref {
                    path,
                    glob: true,
                    line: *star_line,
                });
                return i + 2;
            }
            Some(Token {
                tok: Tok::Punct('{'),
                ..
            }) => return use_group(tokens, i + 2, &path, refs),
            // `::<` (turbofish) or anything else ends the path.
            _ => {
                refs.push(Ref {
                    path,
                    glob: false,
                    line,
                });
                return i + 1;
            }
        }
    }
}

/// The items of a use group `{a::b, c, self as d, *}` after `prefix::{`, up to and past its `}`.
fn use_group(tokens: &[Token], mut i: usize, prefix: &[String], refs: &mut Vec<Ref>) -> usize {
    while let Some(t) = tokens.get(i) {
        match &t.tok {
            Tok::Punct('}') => return i + 1,
            Tok::Punct('{') => i = use_group(tokens, i + 1, prefix, refs),
            Tok::Punct('*') => {
                refs.push(Ref {
                    path: prefix.to_vec(),
                    glob: true,
                    line: t.line,
                });
                i += 1;
            }
            // `as name`: skip the alias.
            Tok::Ident(kw) if kw == "as" => i += 2,
            Tok::Ident(kw) if kw == "self" => {
                refs.push(Ref {
                    path: prefix.to_vec(),
                    glob: false,
                    line: t.line,
                });
                i += 1;
            }
            Tok::Ident(seg) => {
                let mut path = prefix.to_vec();
                path.push(seg.clone());
                i = path_tail(tokens, i + 1, path, t.line, refs);
            }
            _ => i += 1,
        }
    }
    i
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A throw-away workspace root under the temp dir, removed on drop.
    struct Tree(PathBuf);

    impl Tree {
        fn new(files: &[(&str, &str)]) -> Self {
            static N: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "xtask-layers-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            for (path, text) in files {
                let path = dir.join(SRC).join(path);
                fs::create_dir_all(path.parent().unwrap()).unwrap();
                fs::write(path, text).unwrap();
            }
            Self(dir)
        }

        fn check(&self, md: &str) -> Vec<String> {
            check(&self.0, md).iter().map(ToString::to_string).collect()
        }
    }

    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    const RULES: &str = "\
# Architecture

## Invariants

- Architecture invariant: layer `sys` imports nothing of the crate.
- Architecture invariant: layer `storage` imports only `sys`.
- Architecture invariant: layer `sql` imports only `storage` and `sys`.
- Architecture invariant: only the daemon opens the database for writing.
";

    /// A small clean tree: sys <- storage <- sql.
    fn clean_files() -> Vec<(&'static str, &'static str)> {
        vec![
            ("lib.rs", "pub mod sql;\npub mod storage;\npub mod sys;\n"),
            ("main.rs", "fn main() { agent::sql::run() }\n"),
            ("sys.rs", "pub fn now_ns() -> u64 { 0 }\n"),
            (
                "storage/mod.rs",
                "mod codec;\nuse crate::sys;\npub use codec::Codec;\npub struct Store;\n",
            ),
            (
                "storage/codec.rs",
                "use super::Store;\nuse crate::{storage::Store as S, sys::{self, now_ns}};\npub struct Codec;\n",
            ),
            (
                "sql/mod.rs",
                "use crate::{\n    storage::{Store, codec},\n    sys,\n};\npub fn run() { let _ = crate::sys::now_ns(); }\n",
            ),
        ]
    }

    #[test]
    fn clean_tree_passes() {
        let tree = Tree::new(&clean_files());
        assert_eq!(tree.check(RULES), Vec::<String>::new());
        let graph: Vec<String> = import_graph(&tree.0)
            .iter()
            .map(|(m, t)| graph_line(m, t))
            .collect();
        assert_eq!(
            graph,
            ["sql -> storage, sys", "storage -> sys", "sys -> (nothing)"]
        );
    }

    #[test]
    fn forbidden_group_import_is_caught_with_its_line() {
        let mut files = clean_files();
        files.push((
            "storage/retention.rs",
            "//! Retention.\n\nuse crate::{storage::Store, sql::Engine};\n",
        ));
        files.push((
            "storage/multi.rs",
            "use crate::{\n    storage::Store,\n    sql::{self, Engine},\n    sys,\n};\n",
        ));
        let tree = Tree::new(&files);
        assert_eq!(
            tree.check(RULES),
            [
                "agent/src/storage/multi.rs:3: layer `storage` imports `crate::sql` (allowed: sys)",
                "agent/src/storage/retention.rs:3: layer `storage` imports `crate::sql` (allowed: sys)",
            ]
        );
    }

    #[test]
    fn inline_path_is_caught() {
        let mut files = clean_files();
        files[2] = (
            "sys.rs",
            "pub fn now_ns() -> u64 {\n    crate::sql::x()\n}\n",
        );
        let tree = Tree::new(&files);
        assert_eq!(
            tree.check(RULES),
            ["agent/src/sys.rs:2: layer `sys` imports `crate::sql` (allowed: nothing)"]
        );
    }

    #[test]
    fn super_chains_resolve_against_the_module_path() {
        let mut files = clean_files();
        files.extend([
            ("storage/a/mod.rs", "mod b;\n"),
            (
                "storage/a/b.rs",
                // storage::sql (own layer), then crate::sql.
                "use super::super::sql::X;\nuse super::super::super::sql::Y;\nuse self::super::Z;\n",
            ),
            (
                "storage/c.rs",
                // In `mod tests`, three supers reach the crate root.
                "use super::sql::X;\n\n#[cfg(test)]\nmod tests {\n    use super::*;\n    use super::super::super::sql::Y;\n}\nuse super::super::sys::now_ns;\n",
            ),
        ]);
        let tree = Tree::new(&files);
        assert_eq!(
            tree.check(RULES),
            [
                "agent/src/storage/a/b.rs:2: layer `storage` imports `crate::sql` (allowed: sys)",
                "agent/src/storage/c.rs:6: layer `storage` imports `crate::sql` (allowed: sys)",
            ]
        );
    }

    #[test]
    fn comments_and_literals_do_not_count() {
        let mut files = clean_files();
        files[2] = (
            "sys.rs",
            r####"//! See [`crate::sql`].
/// Used by `crate::sql::Engine`.
/* crate::sql /* nested crate::sql */ still a comment crate::sql */
pub fn now_ns<'a>(x: &'a str) -> &'a str {
    let _ = "crate::sql::x() \" crate::sql";
    let _ = r#"crate::sql "quoted" crate::sql"#;
    let _ = r"crate::sql";
    let _ = br##"crate::sql"#crate::sql"##;
    let _ = ('"', '\'', b'"', '\u{1F600}');
    let _ = "multi
        line crate::sql";
    'outer: loop { break 'outer; }
    x
}
"####,
        );
        let tree = Tree::new(&files);
        assert_eq!(tree.check(RULES), Vec::<String>::new());
    }

    #[test]
    fn module_without_rule_is_reported() {
        let mut files = clean_files();
        files.push(("cli/mod.rs", "use crate::sql;\n"));
        files.push(("fixtures/data.bin", "not a module"));
        let tree = Tree::new(&files);
        let md = format!("{RULES}- Architecture invariant: layer `gone` imports only `sys`.\n");
        assert_eq!(
            tree.check(&md),
            [
                "ARCHITECTURE.md:9: the rule names module `gone`, which does not exist in agent/src",
                "module `cli` has no layer rule in ARCHITECTURE.md",
            ]
        );
    }

    #[test]
    fn unknown_names_are_reported() {
        let mut files = clean_files();
        files.push((
            "storage/log.rs",
            "use crate::*;\nfn f() { crate::log_error!(\"x\"); }\n",
        ));
        let tree = Tree::new(&files);
        assert_eq!(
            tree.check(RULES),
            [
                "agent/src/storage/log.rs:1: layer `storage` imports `crate::*`, which is unknown \
                 (not a top-level module of agent/src)",
                "agent/src/storage/log.rs:2: layer `storage` imports `crate::log_error`, which is \
                 unknown (not a top-level module of agent/src)",
            ]
        );
    }

    #[test]
    fn sibling_cycle_is_reported() {
        let mut files = clean_files();
        files.extend([
            (
                "config/mod.rs",
                "mod raw;\nmod validate;\nmod live;\npub struct Config;\n",
            ),
            (
                "config/raw.rs",
                "use super::validate::check;\nuse super::Config;\n",
            ),
            ("config/validate.rs", "use crate::config::raw::Raw;\n"),
            // A chain without a cycle, and a reference to a sibling's child.
            ("config/live.rs", "use super::{raw::Raw, validate};\n"),
            ("pipeline/a.rs", "use super::b::X;\n"),
            ("pipeline/b.rs", "use super::sub::Y;\n"),
            ("pipeline/sub/c.rs", "use super::super::a::Z;\n"),
        ]);
        let md = format!(
            "{RULES}- Architecture invariant: layer `config` imports nothing of the crate.\n\
             - Architecture invariant: layer `pipeline` imports nothing of the crate.\n"
        );
        let tree = Tree::new(&files);
        assert_eq!(
            tree.check(&md),
            [
                "agent/src/config: raw.rs and validate.rs import each other",
                "agent/src/pipeline: files import each other: a.rs -> b.rs -> sub/ -> a.rs",
            ]
        );
    }

    #[test]
    fn rule_cycle_is_reported() {
        let tree = Tree::new(&clean_files());
        let md = "\
- Architecture invariant: layer `sys` imports only `sql`.
- Architecture invariant: layer `storage` imports only `sys` and `storage`.
- Architecture invariant: layer `sql` imports only `storage`.
- Architecture invariant: layer `sql` imports nothing of the crate.
";
        assert_eq!(
            tree.check(md),
            [
                "ARCHITECTURE.md:4: a second rule for layer `sql` (the first is on line 3)",
                "the layer rules form a cycle: sql -> storage -> sys -> sql",
                "agent/src/sql/mod.rs:3: layer `sql` imports `crate::sys` (allowed: storage)",
                "agent/src/sql/mod.rs:5: layer `sql` imports `crate::sys` (allowed: storage)",
            ]
        );
    }

    #[test]
    fn rule_sentences_parse() {
        let md = "\
- Architecture invariant: layer `sys` imports nothing of the crate.
Architecture invariant: layer `a` imports only `b`.
- Architecture invariant: layer `c` imports only `a`, `b`, `sys`.
- Architecture invariant: layer `d` imports only `a` and `b`.
- Architecture invariant: layer `e` imports only `a`, `b` and `c`.
- Architecture invariant: layer `f` imports only `a`, `b`, and `c`. The rest is prose.
- Architecture invariant: layer `g` imports only `a`,
  `b` and
  `c`.
- Architecture invariant: only the daemon opens the database for writing; `query` and `shell`
  open a secondary instance.
```text
Architecture invariant: layer `x` imports only `y`.
```
- Architecture invariant: layer `h` imports only a, b.
- Architecture invariant: layer `i` imports only `a`
- Architecture invariant: layer `j` imports some `a`.
";
        let (rules, errors) = parse_rules(md);
        let got: Vec<(usize, &str, Vec<&str>)> = rules
            .iter()
            .map(|r| {
                let allowed = r.allowed.iter().map(String::as_str).collect();
                (r.line, r.layer.as_str(), allowed)
            })
            .collect();
        assert_eq!(
            got,
            [
                (1, "sys", vec![]),
                (2, "a", vec!["b"]),
                (3, "c", vec!["a", "b", "sys"]),
                (4, "d", vec!["a", "b"]),
                (5, "e", vec!["a", "b", "c"]),
                (6, "f", vec!["a", "b", "c"]),
                (7, "g", vec!["a", "b", "c"]),
            ]
        );
        let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            errors,
            [
                "ARCHITECTURE.md:15: unreadable layer rule: layer `h`: expected a backticked \
                 name in the list",
                "ARCHITECTURE.md:16: unreadable layer rule: layer `i`: expected \",\", \"and\" \
                 or the closing \".\" after `a`",
                "ARCHITECTURE.md:17: unreadable layer rule: layer `j`: expected \"nothing of \
                 the crate.\" or \"only `A`, `B`.\"",
            ]
        );
    }

    #[test]
    fn strip_keeps_code_and_lines() {
        let src = "let a = 'x'; // c\nfn f<'a>() {} /* b\n */ r#type::x";
        assert_eq!(
            strip(src),
            "let a =    ;     \nfn f<'a>() {}     \n    r#type::x"
        );
    }

    /// Runs the checker over the real tree and prints the top-level import graph:
    /// `cargo test -p xtask -- --ignored --nocapture real_tree`.
    #[test]
    #[ignore = "reads the real agent/src"]
    fn real_tree() {
        let root = crate::root();
        let md = fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
        for v in check(&root, &md) {
            println!("{v}");
        }
        println!("--- imports between top-level modules");
        for (module, targets) in import_graph(&root) {
            println!("{}", graph_line(&module, &targets));
        }
    }
}
