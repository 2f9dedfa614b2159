//! `chrome_extensions`: the extensions of Chromium-based browsers in each account's home
//! (accounts and file guards: [`super::user_files`]; `WHERE uid = N` reads one account).
//!
//! The browsers' folders are osquery's Linux list ([`BROWSERS`]: Chrome and its beta and
//! dev channels, Brave, Chromium, Yandex, Edge, Opera and Vivaldi under `~/.config`, and the
//! snap and flatpak folders). A folder that holds `Preferences` or `Secure Preferences` is a
//! profile, else each of its sub-folders that holds one is. A profile's name is
//! `profile.name` of either file (a profile without one is skipped, except Opera's).
//!
//! The extensions are every `Extensions/<id>/<version>/` folder with a `manifest.json`
//! (`referenced` 0) and every folder named by the `path` of an entry of `extensions.settings`
//! (or `extensions.opsettings`) in the two files (`referenced` 1; a relative path is under
//! `Extensions/`; one outside the account's home is not read). From the manifest: `name`,
//! `version`, `description`, `default_locale`, `current_locale`, `update_url`, `author`,
//! `background.persistent`, `permissions` and `optional_permissions` (their strings joined
//! by `, `, and the arrays as JSON), `key` (the `identifier` is derived from it as Chrome
//! does: the first 16 bytes of its SHA-256, each hex digit written `a`..`p`), the manifest's
//! SHA-256 and its compact JSON; a value that begins `__MSG_` is looked up in
//! `_locales/<default_locale, else current_locale, else en>/messages.json`. From the
//! referencing settings entry: its key (`referenced_identifier`), `from_webstore`, `state`
//! and `install_time` (WebKit microseconds since 1601, also as unix seconds). As osquery
//! does, a missing value is an empty string (`permissions_json` `{}`, `install_timestamp`
//! 0). A malformed `Preferences` file skips its profile, a malformed manifest its extension.
//!
//! The content scripts of the same extensions are `chrome_extension_content_scripts`.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use base64::Engine as _;
use rusqlite::types::Value;
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

use crate::{
    sql::{
        tables::{
            user_files::{Account, accounts, read_inside, read_text_inside, uid_cost},
            util::{int, text},
        },
        vtab::{Column, ColumnType::*, Op, QueryContext, Rows, Table, col, hidden},
    },
    sys::hash::hex,
};

const COLUMNS: &[Column] = &[
    col("browser_type", Text),
    col("uid", BigInt),
    col("name", Text),
    col("profile", Text),
    col("profile_path", Text),
    col("referenced_identifier", Text),
    col("identifier", Text),
    col("version", Text),
    col("description", Text),
    col("default_locale", Text),
    col("current_locale", Text),
    col("update_url", Text),
    col("author", Text),
    col("persistent", Integer),
    col("path", Text),
    col("permissions", Text),
    hidden("permissions_json", Text),
    col("optional_permissions", Text),
    hidden("optional_permissions_json", Text),
    col("manifest_hash", Text),
    col("referenced", BigInt),
    col("from_webstore", Text),
    col("state", Text),
    col("install_time", Text),
    col("install_timestamp", BigInt),
    hidden("manifest_json", Text),
    hidden("key", Text),
    // osquery's alias of default_locale.
    hidden("locale", Text),
];
const UID: usize = 1;

/// The browsers' folders in a home, osquery's names for them.
pub const BROWSERS: [(&str, &str); 19] = [
    ("chrome", ".config/google-chrome"),
    ("chrome_beta", ".config/google-chrome-beta"),
    ("chrome_dev", ".config/google-chrome-unstable"),
    ("brave", ".config/BraveSoftware/Brave-Browser"),
    (
        "brave",
        ".var/app/com.brave.Browser/config/BraveSoftware/Brave-Browser",
    ),
    ("brave_beta", ".config/BraveSoftware/Brave-Browser-Beta"),
    (
        "brave_beta",
        ".var/app/com.brave.Browser/config/BraveSoftware/Brave-Browser-Beta",
    ),
    (
        "brave_nightly",
        ".config/BraveSoftware/Brave-Browser-Nightly",
    ),
    (
        "brave_nightly",
        ".var/app/com.brave.Browser/config/BraveSoftware/Brave-Browser-Nightly",
    ),
    ("chromium", ".config/chromium"),
    ("chromium", "snap/chromium/common/chromium"),
    ("chromium", ".var/app/org.chromium.Chromium/config/chromium"),
    ("yandex", ".config/yandex-browser-beta"),
    ("edge", ".config/microsoft-edge"),
    ("edge_beta", ".config/microsoft-edge-beta"),
    ("edge_dev", ".config/microsoft-edge-dev"),
    ("opera", ".config/opera"),
    ("vivaldi", ".config/vivaldi"),
    ("vivaldi", ".var/app/com.vivaldi.Vivaldi/config/vivaldi"),
];
const PREFERENCES: [&str; 2] = ["Preferences", "Secure Preferences"];
const MAX_PREFERENCES: u64 = 16 << 20;
const MAX_MANIFEST: u64 = 8 << 20;
/// Seconds from 1601-01-01 (WebKit's epoch) to 1970-01-01.
const WEBKIT_EPOCH_OFFSET: i64 = 11_644_473_600;

/// The manifest values a row shows (osquery's names), in the manifest at `path`.
const STRINGS: [(&str, &str); 9] = [
    ("name", "name"),
    ("update_url", "update_url"),
    ("version", "version"),
    ("author", "author"),
    ("default_locale", "default_locale"),
    ("current_locale", "current_locale"),
    ("persistent", "background.persistent"),
    ("description", "description"),
    ("key", "key"),
];
const LISTS: [&str; 2] = ["permissions", "optional_permissions"];
const SETTINGS: [&str; 3] = ["from_webstore", "state", "install_time"];

/// A profile of a browser and its extensions.
#[derive(Debug)]
pub struct Profile {
    pub browser: &'static str,
    pub uid: u32,
    pub name: String,
    /// As the account's processes see it.
    pub path: String,
    pub extensions: Vec<Extension>,
}

/// An extension folder of a profile.
#[derive(Debug, Default)]
pub struct Extension {
    /// As the account's processes see it.
    pub path: String,
    pub referenced: bool,
    /// The manifest's values by osquery's names (`name`, `permissions_json`, …), localized.
    pub props: BTreeMap<String, String>,
    pub manifest_hash: String,
    pub manifest_json: String,
    /// Derived from the manifest's `key`.
    pub identifier: Option<String>,
    /// From the referencing settings entry: `referenced_identifier`, `from_webstore`, ….
    pub settings: BTreeMap<String, String>,
    /// `(match, script)` of each `content_scripts` entry's `matches` × `js`.
    pub scripts: Vec<(String, String)>,
}

impl Extension {
    pub fn prop(&self, name: &str) -> String {
        self.props.get(name).cloned().unwrap_or_default()
    }
    pub fn setting(&self, name: &str) -> String {
        self.settings.get(name).cloned().unwrap_or_default()
    }
}

/// `key` of an object, else its first case-insensitive match (osquery's JSON is
/// case-insensitive).
fn get<'a>(v: &'a Json, key: &str) -> Option<&'a Json> {
    let o = v.as_object()?;
    o.get(key).or_else(|| {
        o.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// The value at a dotted path.
fn get_path<'a>(v: &'a Json, path: &str) -> Option<&'a Json> {
    path.split('.').try_fold(v, get)
}

/// A JSON value as osquery's property tree has it: a scalar's text, a container's "".
fn scalar_text(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Number(n) => n.to_string(),
        Json::Bool(b) => b.to_string(),
        Json::Null => "null".to_owned(),
        Json::Array(_) | Json::Object(_) => String::new(),
    }
}

/// `s` translated by a `messages.json`, when it is `__MSG_<key>__` and the key is there.
fn localize(s: &str, messages: &Json) -> Option<String> {
    let rest = s.strip_prefix("__MSG_")?;
    let key = rest.strip_suffix("__").unwrap_or(rest);
    get(messages, key)
        .and_then(|m| get(m, "message"))
        .map(scalar_text)
}

/// Chrome's extension id for a manifest `key` (base64 of the public key).
pub fn identifier_of_key(key: &str) -> Option<String> {
    let compact: String = key.chars().filter(|c| !c.is_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(&compact)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(&compact))
        .ok()
        .filter(|d| !d.is_empty())?;
    let digest = Sha256::digest(&der);
    Some(
        digest[..16]
            .iter()
            .flat_map(|b| [b >> 4, b & 0xf])
            .map(|d| char::from(b'a' + d))
            .collect(),
    )
}

/// Unix seconds of a WebKit time (microseconds since 1601); None when it is not a number
/// or before 1970.
pub fn webkit_to_unix(s: &str) -> Option<i64> {
    let t = s.trim().parse::<i64>().ok()? / 1_000_000 - WEBKIT_EPOCH_OFFSET;
    (t >= 0).then_some(t)
}

/// The extension shown at `shown` with this `manifest.json`; None when the manifest is not
/// a JSON object. `messages` reads a locale's `messages.json` text.
pub fn parse_extension(
    shown: &str,
    manifest: &[u8],
    messages: impl Fn(&str) -> Option<String>,
) -> Option<Extension> {
    let m: Json = serde_json::from_slice(manifest).ok()?;
    if !m.is_object() {
        return None;
    }
    let mut props = BTreeMap::new();
    for (name, path) in STRINGS {
        if let Some(v) = get_path(&m, path) {
            props.insert(name.to_owned(), scalar_text(v));
        }
    }
    for name in LISTS {
        if let Some(v) = get(&m, name) {
            let joined = v
                .as_array()
                .map(|a| {
                    a.iter().map(scalar_text).fold(String::new(), |mut acc, s| {
                        if !acc.is_empty() {
                            acc.push_str(", ");
                        }
                        acc.push_str(&s);
                        acc
                    })
                })
                .unwrap_or_default();
            props.insert(name.to_owned(), joined);
            props.insert(format!("{name}_json"), v.to_string());
        }
    }
    if props.values().any(|v| v.starts_with("__MSG_")) {
        let locale = props
            .get("default_locale")
            .or_else(|| props.get("current_locale"))
            .cloned()
            .unwrap_or_else(|| "en".to_owned());
        let parsed = messages(&locale).and_then(|t| serde_json::from_str::<Json>(&t).ok());
        if let Some(msgs) = parsed {
            for (k, v) in props.iter_mut() {
                if k.ends_with("_json") {
                    continue;
                }
                if let Some(l) = localize(v, &msgs) {
                    *v = l;
                }
            }
        }
    }
    let mut scripts = Vec::new();
    for entry in get(&m, "content_scripts")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        let (Some(matches), Some(js)) = (get(entry, "matches"), get(entry, "js")) else {
            continue;
        };
        for mv in matches.as_array().into_iter().flatten() {
            for jv in js.as_array().into_iter().flatten() {
                scripts.push((scalar_text(mv), scalar_text(jv)));
            }
        }
    }
    let identifier = props.get("key").and_then(|k| identifier_of_key(k));
    Some(Extension {
        path: shown.to_owned(),
        referenced: false,
        props,
        manifest_hash: hex(&Sha256::digest(manifest)),
        manifest_json: m.to_string(),
        identifier,
        settings: BTreeMap::new(),
        scripts,
    })
}

/// A path as the host sees it (under `root`), and as shown.
#[derive(Clone, Debug)]
struct Place {
    host: PathBuf,
    shown: String,
}

impl Place {
    fn join(&self, rel: &str) -> Place {
        Place {
            host: self.host.join(rel),
            shown: format!("{}/{rel}", self.shown.trim_end_matches('/')),
        }
    }
    /// The real host path (for comparing), the path itself when it does not resolve.
    fn real(&self) -> PathBuf {
        std::fs::canonicalize(&self.host).unwrap_or_else(|_| self.host.clone())
    }
}

/// The sub-folders of `dir`, sorted by name.
fn subfolders(dir: &Place) -> Vec<Place> {
    let Ok(rd) = std::fs::read_dir(&dir.host) else {
        return Vec::new();
    };
    let mut names: Vec<String> = rd
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    names.iter().map(|n| dir.join(n)).collect()
}

/// The `(settings key, entry)` pairs of a preferences file's `extensions.settings` (else
/// `extensions.opsettings`).
fn settings_entries(prefs: &Json) -> Vec<(&str, &Json)> {
    let Some(ext) = get(prefs, "extensions") else {
        return Vec::new();
    };
    get(ext, "settings")
        .or_else(|| get(ext, "opsettings"))
        .and_then(Json::as_object)
        .map(|o| o.iter().map(|(k, v)| (k.as_str(), v)).collect())
        .unwrap_or_default()
}

/// Where a settings entry's `path` is: absolute as it is (under `root` on the host),
/// relative under the profile's `Extensions`.
fn entry_place(root: &Path, profile: &Place, entry: &Json) -> Option<Place> {
    let p = get(entry, "path")?.as_str()?;
    Some(if p.starts_with('/') {
        Place {
            host: root.join(p.trim_start_matches('/')),
            shown: p.to_owned(),
        }
    } else {
        profile.join("Extensions").join(p)
    })
}

/// The profile at `dir`, when it holds a preferences file that parses.
fn read_profile(root: &Path, a: &Account, browser: &'static str, dir: &Place) -> Option<Profile> {
    let mut prefs = Vec::new();
    for f in PREFERENCES {
        if let Some(t) = read_text_inside(&a.path, &dir.host.join(f), MAX_PREFERENCES) {
            // A malformed file: the profile is skipped, as osquery does.
            let v: Json = serde_json::from_str(&t).ok()?;
            prefs.push(v);
        }
    }
    if prefs.is_empty() {
        return None;
    }
    let name = prefs
        .iter()
        .filter_map(|p| get_path(p, "profile.name"))
        .map(scalar_text)
        .find(|n| !n.is_empty());
    if name.is_none() && browser != "opera" {
        return None;
    }
    let read_ext = |place: &Place| -> Option<Extension> {
        let manifest = read_inside(
            &a.path,
            &place.host.join("manifest.json"),
            MAX_MANIFEST,
            false,
        )?;
        parse_extension(&place.shown, &manifest, |locale| {
            read_text_inside(
                &a.path,
                &place.host.join(format!("_locales/{locale}/messages.json")),
                MAX_MANIFEST,
            )
        })
    };
    // Every extension folder, by real path.
    let mut found: BTreeMap<PathBuf, Extension> = BTreeMap::new();
    for id in subfolders(&dir.join("Extensions")) {
        for version in subfolders(&id) {
            if let Some(e) = read_ext(&version) {
                found.insert(version.real(), e);
            }
        }
    }
    // The referenced ones, with the first file's entry that names each.
    let mut referenced = BTreeMap::new();
    for p in &prefs {
        for (key, entry) in settings_entries(p) {
            let Some(place) = entry_place(root, dir, entry) else {
                continue;
            };
            let real = place.real();
            if referenced.contains_key(&real) {
                continue;
            }
            let Some(mut e) = found.remove(&real).or_else(|| read_ext(&place)) else {
                continue;
            };
            e.referenced = true;
            e.settings
                .insert("referenced_identifier".to_owned(), key.to_owned());
            for s in SETTINGS {
                if let Some(v) = get(entry, s) {
                    e.settings.insert(s.to_owned(), scalar_text(v));
                }
            }
            referenced.insert(real, e);
        }
    }
    Some(Profile {
        browser,
        uid: a.uid,
        name: name.unwrap_or_default(),
        path: dir.shown.clone(),
        extensions: found
            .into_values()
            .chain(referenced.into_values())
            .collect(),
    })
}

/// The browser profiles of the accounts the `uid` (column `uid_column`) constraints ask
/// for, under `root`.
pub fn profiles(root: &Path, ctx: &QueryContext, uid_column: usize) -> Vec<Profile> {
    let mut out = Vec::new();
    for a in accounts(root, ctx, uid_column) {
        let home = Place {
            host: a.path.clone(),
            shown: a.home.clone(),
        };
        for (browser, rel) in BROWSERS {
            let base = home.join(rel);
            let is_profile = |p: &Place| PREFERENCES.iter().any(|f| p.host.join(f).is_file());
            if is_profile(&base) {
                out.extend(read_profile(root, &a, browser, &base));
                continue;
            }
            for sub in subfolders(&base) {
                if is_profile(&sub) {
                    out.extend(read_profile(root, &a, browser, &sub));
                }
            }
        }
    }
    out
}

fn rows_under(root: &Path, ctx: &QueryContext) -> Vec<Vec<Value>> {
    let mut rows = Vec::new();
    for p in profiles(root, ctx, UID) {
        for e in &p.extensions {
            let install_time = e.setting("install_time");
            let json_or = |k: &str| e.props.get(k).cloned().unwrap_or_else(|| "{}".to_owned());
            rows.push(vec![
                text(p.browser),
                int(p.uid),
                text(e.prop("name")),
                text(p.name.clone()),
                text(p.path.clone()),
                text(e.setting("referenced_identifier")),
                text(e.identifier.clone().unwrap_or_default()),
                text(e.prop("version")),
                text(e.prop("description")),
                text(e.prop("default_locale")),
                text(e.prop("current_locale")),
                text(e.prop("update_url")),
                text(e.prop("author")),
                int(i64::from(e.prop("persistent").eq_ignore_ascii_case("true"))),
                text(e.path.clone()),
                text(e.prop("permissions")),
                text(json_or("permissions_json")),
                text(e.prop("optional_permissions")),
                text(json_or("optional_permissions_json")),
                text(e.manifest_hash.clone()),
                int(i64::from(e.referenced)),
                text(e.setting("from_webstore")),
                text(e.setting("state")),
                text(install_time.clone()),
                int(webkit_to_unix(&install_time).unwrap_or(0)),
                text(e.manifest_json.clone()),
                text(e.prop("key")),
                text(e.prop("default_locale")),
            ]);
        }
    }
    rows
}

#[derive(Debug)]
pub struct ChromeExtensions;

impl Table for ChromeExtensions {
    fn name(&self) -> &'static str {
        "chrome_extensions"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn generate(&self, ctx: &QueryContext) -> Result<Rows, String> {
        Ok(Box::new(
            rows_under(Path::new("/"), ctx).into_iter().map(Ok),
        ))
    }
    fn cost(&self, constrained: &[(usize, Op)]) -> f64 {
        uid_cost(constrained, UID)
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::sql::tables::user_files::tests::{fake_root, uid_eq};

    /// A made-up "public key" (base64 of `example public key`) and the id Chrome derives
    /// from it (`base64 -d | sha256sum | cut -c1-32 | tr 0-9a-f a-p`).
    pub const KEY: &str = "ZXhhbXBsZSBwdWJsaWMga2V5";
    pub const KEY_ID: &str = "adbalafdkplbcbbekboonkafkalmpncj";

    pub const MANIFEST_A: &str = r#"{
      "manifest_version": 2,
      "name": "__MSG_appName__",
      "description": "__MSG_appDesc__",
      "default_locale": "fr",
      "version": "1.2.3",
      "author": "Ann Example",
      "update_url": "https://example.org/ext/update",
      "background": {"persistent": true, "scripts": ["bg.js"]},
      "permissions": ["tabs", {"fileSystem": ["write"]}, "https://example.org/*"],
      "key": "ZXhhbXBsZSBwdWJsaWMga2V5",
      "content_scripts": [
        {"matches": ["https://example.org/*", "https://example.com/*"], "js": ["a.js", "b.js"]},
        {"matches": ["<all_urls>"]},
        {"js": ["c.js"]}
      ]
    }"#;
    pub const MANIFEST_B: &str = r#"{"name": "Plain", "version": "4.0", "optional_permissions": ["storage", "idle"],
      "content_scripts": [{"matches": ["*://*/*"], "js": ["all.js"]}]}"#;

    /// A home with one Chrome profile ("Default", named "Person 1") holding extension
    /// `aaa…` 1.2.3 (referenced by Secure Preferences, localized in French) and `bbb…` 4.0
    /// (not referenced), a broken manifest, and a Chromium profile whose Preferences is
    /// malformed.
    pub fn chrome_home(root: &Path, home: &str) {
        let h = root.join(home.trim_start_matches('/'));
        let prof = h.join(".config/google-chrome/Default");
        let a = prof.join("Extensions/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/1.2.3_0");
        let b = prof.join("Extensions/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb/4.0_0");
        let broken = prof.join("Extensions/cccccccccccccccccccccccccccccccc/1_0");
        for d in [&a.join("_locales/fr"), &a.join("_locales/en"), &b, &broken] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(a.join("manifest.json"), MANIFEST_A).unwrap();
        std::fs::write(
            a.join("_locales/fr/messages.json"),
            r#"{"appName": {"message": "Bonjour"}, "APPDESC": {"message": "Une extension"}}"#,
        )
        .unwrap();
        std::fs::write(
            a.join("_locales/en/messages.json"),
            r#"{"appName": {"message": "Hello"}}"#,
        )
        .unwrap();
        std::fs::write(b.join("manifest.json"), MANIFEST_B).unwrap();
        std::fs::write(broken.join("manifest.json"), "{ not json").unwrap();
        std::fs::write(
            prof.join("Preferences"),
            r#"{"profile": {"name": "Person 1"}, "extensions": {"settings": {}}}"#,
        )
        .unwrap();
        std::fs::write(
            prof.join("Secure Preferences"),
            r#"{"extensions": {"settings": {
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa": {"path": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/1.2.3_0",
                   "from_webstore": true, "state": 1, "install_time": "13350000000000000"},
                "gone": {"path": "dddddddddddddddddddddddddddddddd/9_0"},
                "outside": {"path": "/etc"}
            }}}"#,
        )
        .unwrap();
        let bad = h.join(".config/chromium/Default");
        std::fs::create_dir_all(bad.join("Extensions/eeee/1")).unwrap();
        std::fs::write(bad.join("Preferences"), "{ truncated").unwrap();
        std::fs::write(bad.join("Extensions/eeee/1/manifest.json"), MANIFEST_B).unwrap();
    }

    fn strings(rows: &[Vec<Value>], cols: &[usize]) -> Vec<Vec<String>> {
        rows.iter()
            .map(|r| {
                cols.iter()
                    .map(|&c| match &r[c] {
                        Value::Text(t) => t.clone(),
                        Value::Integer(i) => i.to_string(),
                        v => format!("{v:?}"),
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn the_identifier_is_derived_from_the_key_as_chrome_does() {
        assert_eq!(identifier_of_key(KEY).as_deref(), Some(KEY_ID));
        let shell = crate::sql::tables::util::tool(
            "sh",
            &[
                "-c",
                &format!("printf %s {KEY} | base64 -d | sha256sum | cut -c1-32 | tr 0-9a-f a-p"),
            ],
        );
        assert_eq!(shell.trim(), KEY_ID);
        // Whitespace in the key is ignored; padding is optional.
        assert_eq!(
            identifier_of_key("ZXhhbXBs\nZSBwdWJsaWMga2V5").as_deref(),
            Some(KEY_ID)
        );
        assert_eq!(
            identifier_of_key("YQ").as_deref(),
            identifier_of_key("YQ==").as_deref()
        );
        assert_eq!(identifier_of_key("!!!"), None);
        assert_eq!(identifier_of_key(""), None);
        assert_eq!(webkit_to_unix("13350000000000000"), Some(1_705_526_400));
        assert_eq!(webkit_to_unix("1"), None);
        assert_eq!(webkit_to_unix("soon"), None);
    }

    #[test]
    fn a_fake_chrome_profile_gives_its_extensions() {
        let root = fake_root(&[("ann", 1000, "/home/ann"), ("bob", 1001, "/home/bob")]);
        let r = root.path();
        chrome_home(r, "/home/ann");
        let rows = rows_under(r, &QueryContext::default());
        let names: Vec<&str> = COLUMNS.iter().map(|c| c.name).collect();
        let ix = |n: &str| names.iter().position(|c| *c == n).unwrap();
        let cols: Vec<usize> = [
            "browser_type",
            "uid",
            "name",
            "profile",
            "profile_path",
            "referenced_identifier",
            "identifier",
            "version",
            "description",
            "default_locale",
            "current_locale",
            "update_url",
            "author",
            "persistent",
            "path",
            "permissions",
            "permissions_json",
            "optional_permissions",
            "optional_permissions_json",
            "referenced",
            "from_webstore",
            "state",
            "install_time",
            "install_timestamp",
            "key",
            "locale",
        ]
        .iter()
        .map(|n| ix(n))
        .collect();
        let prof = "/home/ann/.config/google-chrome/Default";
        assert_eq!(
            strings(&rows, &cols),
            [
                vec![
                    "chrome".to_owned(),
                    "1000".into(),
                    "Plain".into(),
                    "Person 1".into(),
                    prof.into(),
                    "".into(),
                    "".into(),
                    "4.0".into(),
                    "".into(),
                    "".into(),
                    "".into(),
                    "".into(),
                    "".into(),
                    "0".into(),
                    format!("{prof}/Extensions/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb/4.0_0"),
                    "".into(),
                    "{}".into(),
                    "storage, idle".into(),
                    r#"["storage","idle"]"#.into(),
                    "0".into(),
                    "".into(),
                    "".into(),
                    "".into(),
                    "0".into(),
                    "".into(),
                    "".into(),
                ],
                vec![
                    "chrome".to_owned(),
                    "1000".into(),
                    "Bonjour".into(),
                    "Person 1".into(),
                    prof.into(),
                    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".into(),
                    KEY_ID.into(),
                    "1.2.3".into(),
                    "Une extension".into(),
                    "fr".into(),
                    "".into(),
                    "https://example.org/ext/update".into(),
                    "Ann Example".into(),
                    "1".into(),
                    format!("{prof}/Extensions/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/1.2.3_0"),
                    "tabs, , https://example.org/*".into(),
                    r#"["tabs",{"fileSystem":["write"]},"https://example.org/*"]"#.into(),
                    "".into(),
                    "{}".into(),
                    "1".into(),
                    "true".into(),
                    "1".into(),
                    "13350000000000000".into(),
                    "1705526400".into(),
                    KEY.into(),
                    "fr".into(),
                ],
            ]
        );
        // The manifest's hash and compact JSON.
        assert_eq!(
            rows[1][ix("manifest_hash")],
            text(hex(&Sha256::digest(MANIFEST_A.as_bytes())))
        );
        let Value::Text(j) = &rows[1][ix("manifest_json")] else {
            panic!()
        };
        assert!(!j.contains('\n'), "{j}");
        assert_eq!(
            serde_json::from_str::<Json>(j).unwrap(),
            serde_json::from_str::<Json>(MANIFEST_A).unwrap()
        );
    }

    #[test]
    fn uid_reads_only_that_account() {
        let root = fake_root(&[("ann", 1000, "/home/ann"), ("bob", 1001, "/home/bob")]);
        let r = root.path();
        chrome_home(r, "/home/ann");
        chrome_home(r, "/home/bob");
        let uids = |ctx: &QueryContext| -> Vec<Value> {
            rows_under(r, ctx)
                .into_iter()
                .map(|x| x[UID].clone())
                .collect()
        };
        assert_eq!(
            uids(&QueryContext::default()),
            [int(1000), int(1000), int(1001), int(1001)]
        );
        assert_eq!(uids(&uid_eq(UID, 1001)), [int(1001), int(1001)]);
        assert_eq!(uids(&uid_eq(UID, 7)), Vec::<Value>::new());
        // bob's folder is only read when asked: a broken one does not matter to ann.
        std::fs::write(
            r.join("home/bob/.config/google-chrome/Default/Secure Preferences"),
            "{",
        )
        .unwrap();
        assert_eq!(uids(&uid_eq(UID, 1000)), [int(1000), int(1000)]);
        assert_eq!(uids(&uid_eq(UID, 1001)), Vec::<Value>::new());
    }

    /// On the host, through the engine: Fleet's software queries (`CROSS JOIN users USING
    /// (uid)`) give the rows each table gives alone, and `uid = 0` keeps root's.
    #[test]
    fn fleets_software_queries_join_users_on_the_host() {
        use crate::sql::tables::util::rows_of;
        for (t, cols) in [
            ("chrome_extensions", "uid, path, name"),
            ("chrome_extension_content_scripts", "uid, path, match"),
            ("firefox_addons", "uid, identifier, path"),
            ("jetbrains_plugins", "uid, path, name"),
        ] {
            let alone = rows_of(&format!("SELECT {cols} FROM {t} ORDER BY 1, 2, 3"));
            let q: Vec<String> = cols.split(", ").map(|c| format!("{t}.{c}")).collect();
            let joined = rows_of(&format!(
                "SELECT {} FROM {t} CROSS JOIN users USING (uid) ORDER BY 1, 2, 3",
                q.join(", ")
            ));
            assert_eq!(alone, joined, "{t}");
            let root_only = rows_of(&format!(
                "SELECT {cols} FROM {t} WHERE uid = 0 ORDER BY 1, 2, 3"
            ));
            let want: Vec<Vec<String>> = alone.iter().filter(|r| r[0] == "0").cloned().collect();
            assert_eq!(root_only, want, "{t}");
        }
    }

    #[test]
    fn manifests_outside_the_home_are_not_read() {
        let root = fake_root(&[("ann", 1000, "/home/ann")]);
        let r = root.path();
        chrome_home(r, "/home/ann");
        // An unpacked extension outside the home, and a symlinked manifest pointing out.
        let outside = r.join("opt/ext");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("manifest.json"), MANIFEST_B).unwrap();
        let prof = r.join("home/ann/.config/google-chrome/Default");
        std::fs::write(
            prof.join("Preferences"),
            r#"{"profile": {"name": "P"}, "extensions": {"settings": {"x": {"path": "/opt/ext"}}}}"#,
        )
        .unwrap();
        let link = prof.join("Extensions/ffff/1");
        std::fs::create_dir_all(&link).unwrap();
        std::os::unix::fs::symlink(outside.join("manifest.json"), link.join("manifest.json"))
            .unwrap();
        let rows = rows_under(r, &QueryContext::default());
        assert_eq!(rows.len(), 2);
        assert!(
            rows.iter()
                .all(|x| matches!(&x[14], Value::Text(p) if p.starts_with("/home/ann/"))),
            "{rows:?}"
        );
    }
}
