//! The CLI contract: errors are clear and exit non-zero; output modes.

use std::process::Command;

use tests::osprey_bin;

fn osprey(args: &[&str]) -> std::process::Output {
    Command::new(osprey_bin())
        .args(args)
        .output()
        .expect("run osprey")
}

#[test]
fn sql_error_is_reported_with_non_zero_exit() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("--database_path={}", dir.path().join("none").display());
    let out = osprey(&["query", &db, "SELEC 1"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Error: near \"SELEC\": syntax error"), "{err}");
    let out = osprey(&["query", &db, "SELECT * FROM no_such_table"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such table: no_such_table"));
}

#[test]
fn unknown_flag_is_an_error_with_a_suggestion() {
    let out = osprey(&["query", "--jsn", "SELECT 1"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "osprey: error: unknown flag --jsn (did you mean --json?)"
    );
}

#[test]
fn output_modes() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("--database_path={}", dir.path().join("none").display());
    let sql = "SELECT 1 AS a, 'x' AS b";
    let out = osprey(&["query", &db, "--csv", sql]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "a|b\n1|x\n");
    let out = osprey(&["query", &db, "--json", sql]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "[\n  {\n    \"a\": \"1\",\n    \"b\": \"x\"\n  }\n]\n"
    );
    let out = osprey(&["query", &db, "--line", sql]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "a = 1\nb = x\n");
}
