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
        r.register(info("a"), tables(&["t3"]), &[]),
        "already registered",
    );
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
