use super::*;

fn info(name: &str) -> InternalExtensionInfo {
    InternalExtensionInfo {
        name: Some(name.to_owned()),
        version: Some("1.0".to_owned()),
        sdk_version: Some("1.8.0".to_owned()),
        min_sdk_version: Some("1.8.0".to_owned()),
    }
}

fn tables(names: &[&str]) -> ExtensionRegistry {
    let routes = names
        .iter()
        .map(|n| ((*n).to_owned(), Vec::new()))
        .collect();
    BTreeMap::from([("table".to_owned(), routes)])
}

#[test]
fn registration_gives_ids_and_refuses_every_duplicate() {
    let r = Registry::default();
    let ok = r.register(info("a"), tables(&["t1"]), &["processes"]);
    assert_eq!((ok.code, ok.uuid), (Some(0), Some(1)));
    let ok2 = r.register(info("b"), tables(&["t2"]), &["processes"]);
    assert_eq!((ok2.code, ok2.uuid), (Some(0), Some(2)));
    let refuse = |st: ExtensionStatus, why: &str| {
        assert_eq!(st.code, Some(1), "{st:?}");
        assert!(st.message.as_deref().unwrap_or("").contains(why), "{st:?}");
    };
    refuse(
        r.register(info("c"), tables(&["t1"]), &[]),
        "already registered by \"a\"",
    );
    refuse(
        r.register(info("d"), tables(&["processes"]), &["processes"]),
        "core table",
    );
    refuse(r.register(info(""), tables(&["x"]), &[]), "needs a name");
    let odd = BTreeMap::from([("tables".to_owned(), BTreeMap::new())]);
    refuse(r.register(info("e"), odd, &[]), "unknown registry");
    assert_eq!(
        r.list()
            .into_iter()
            .map(|(k, v)| (k, v.name.unwrap()))
            .collect::<Vec<_>>(),
        [(1, "a".to_owned()), (2, "b".to_owned())]
    );
    assert_eq!(r.deregister(1).code, Some(0));
    assert_eq!(r.deregister(1).code, Some(1));
    // The name and the table are free again; ids are never reused.
    let again = r.register(info("a"), tables(&["t1"]), &[]);
    assert_eq!((again.code, again.uuid), (Some(0), Some(3)));
    // The same name while the first does not answer a ping (no socket here): replaced.
    let newer = r.register(info("a"), tables(&["t1"]), &[]);
    assert_eq!((newer.code, newer.uuid), (Some(0), Some(4)));
    let names: Vec<(i64, String)> = r
        .list()
        .into_iter()
        .map(|(k, v)| (k, v.name.unwrap()))
        .collect();
    assert_eq!(names, [(2, "b".to_owned()), (4, "a".to_owned())]);
}

#[test]
fn values_go_out_as_osquery_text() {
    use rusqlite::types::Value;
    let rs = crate::sql::ResultSet {
        columns: vec!["a".into(), "b".into(), "c".into()],
        rows: vec![vec![
            Value::Integer(7),
            Value::Null,
            Value::Text("x".into()),
        ]],
    };
    assert_eq!(
        rows_of(&rs),
        [BTreeMap::from([
            ("a".to_owned(), "7".to_owned()),
            ("b".to_owned(), String::new()),
            ("c".to_owned(), "x".to_owned()),
        ])]
    );
}

fn route(name: &str, ty: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("id".to_owned(), "column".to_owned()),
        ("name".to_owned(), name.to_owned()),
        ("type".to_owned(), ty.to_owned()),
        ("op".to_owned(), "0".to_owned()),
    ])
}

#[test]
fn routes_become_typed_columns_kept_once() {
    let routes = [
        route("n", "INTEGER"),
        route("w", "TEXT"),
        route("x", "DOUBLE"),
    ];
    let cols = table::columns_of(&routes);
    let got: Vec<(&str, &str)> = cols.iter().map(|c| (c.name, c.ty.sql_name())).collect();
    assert_eq!(got, [("n", "INTEGER"), ("w", "TEXT"), ("x", "DOUBLE")]);
    // The same routes again: the same list (engines see no change).
    assert!(std::ptr::eq(cols, table::columns_of(&routes)));
    assert!(!std::ptr::eq(cols, table::columns_of(&routes[..2])));
}

#[test]
fn the_context_carries_osquerys_operator_codes_and_used_columns() {
    use crate::sql::vtab::{Constraint, Op, QueryContext};
    use rusqlite::types::Value;
    let cols = table::columns_of(&[route("n", "BIGINT"), route("w", "TEXT")]);
    let ctx = QueryContext {
        constraints: vec![
            Constraint {
                column: 1,
                op: Op::Like,
                value: Value::Text("a%".into()),
            },
            Constraint {
                column: 0,
                op: Op::Ge,
                value: Value::Integer(3),
            },
            Constraint {
                column: 0,
                op: Op::Lt,
                value: Value::Integer(9),
            },
        ],
        columns_used: Some(0b01),
    };
    let v: serde_json::Value = serde_json::from_str(&table::context_json(cols, &ctx)).unwrap();
    assert_eq!(
        v,
        serde_json::json!({
            "constraints": [
                {"name": "n", "affinity": "BIGINT",
                 "list": [{"op": 32, "expr": "3"}, {"op": 16, "expr": "9"}]},
                {"name": "w", "affinity": "TEXT", "list": [{"op": 65, "expr": "a%"}]},
            ],
            "colsUsed": ["n"],
        })
    );
}

#[test]
fn returned_text_is_typed_by_its_column_and_missing_is_null() {
    use rusqlite::types::Value;
    let cols = table::columns_of(&[
        route("n", "INTEGER"),
        route("d", "DOUBLE"),
        route("t", "TEXT"),
    ]);
    let row = BTreeMap::from([
        ("n".to_owned(), "12".to_owned()),
        ("d".to_owned(), "not a number".to_owned()),
    ]);
    assert_eq!(
        table::typed_row(cols, &row),
        [
            Value::Integer(12),
            Value::Text("not a number".into()),
            Value::Null
        ]
    );
}

#[test]
fn a_call_to_an_extension_that_does_not_listen_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let r = Registry::new(dir.path().join("em"), Duration::from_secs(1));
    let err = r.call(7, "table", "t", BTreeMap::new()).unwrap_err();
    assert!(err.starts_with("extension 7 at "), "{err}");
    assert!(err.contains("em.7"), "{err}");
    assert_eq!(
        r.call_table("nothing", BTreeMap::new()).unwrap_err(),
        "its extension is gone"
    );
}

#[test]
fn an_engine_gains_and_loses_extension_tables_between_statements() {
    let dir = tempfile::tempdir().unwrap();
    let reg = Arc::new(Registry::new(dir.path().join("em"), Duration::from_secs(1)));
    let env = TableEnv::new(None, Arc::new(Flags::default()))
        .with_dynamic(Arc::new(ExtensionTables(reg.clone())));
    let engine = Engine::new(env).unwrap();
    assert!(
        engine
            .query("SELECT * FROM probe_t")
            .unwrap_err()
            .contains("no such table")
    );
    let routes = vec![route("a", "INTEGER"), route("b", "TEXT")];
    let plugins = BTreeMap::from([(
        "table".to_owned(),
        BTreeMap::from([("probe_t".to_owned(), routes)]),
    )]);
    assert_eq!(reg.register(info("x"), plugins, &[]).code, Some(0));
    // Seen by the next statement, in the catalog (completion) with its columns; its rows come
    // from the extension's socket, which does not exist here.
    let cat = engine.catalog();
    let (_, cols) = cat.iter().find(|(n, _)| *n == "probe_t").unwrap();
    assert_eq!(cols.iter().map(|c| c.name).collect::<Vec<_>>(), ["a", "b"]);
    let err = engine.query("SELECT a FROM probe_t").unwrap_err();
    assert!(err.contains("probe_t: extension 1 at "), "{err}");
    assert!(reg.deregister(1).code == Some(0));
    let err = engine.query("SELECT a FROM probe_t").unwrap_err();
    assert!(err.contains("its extension is gone"), "{err}");
    assert!(!engine.catalog().iter().any(|(n, _)| *n == "probe_t"));
}
