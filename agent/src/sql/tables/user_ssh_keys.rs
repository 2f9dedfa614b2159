//! `user_ssh_keys`: the private keys among the files of each account's `~/.ssh` folder
//! (accounts and file guards: [`super::user_files`]; `WHERE uid = N` reads one account,
//! `pid_with_namespace` a process's root), whether each is encrypted and its type as
//! osquery names OpenSSL's: `rsa`, `dsa`, `ec`, `dh`, or empty (an OpenSSH-format key, an
//! encrypted PEM key, Ed25519). Recognised: PEM keys (`RSA`/`DSA`/`EC PRIVATE KEY`, with
//! `Proc-Type: 4,ENCRYPTED` when encrypted; PKCS#8 `PRIVATE KEY`, its algorithm read from
//! the DER; `ENCRYPTED PRIVATE KEY`) and OpenSSH keys (`openssh-key-v1`, encrypted unless
//! the cipher is `none`). Nothing of a key is shown but the file's path.

use std::path::Path;

use base64::Engine as _;
use rusqlite::types::Value;

use crate::sql::{
    tables::{
        ns::ns_roots,
        user_files::{accounts, in_home, read_inside, uid_cost},
        util::{int, text},
    },
    vtab::{Column, ColumnType::*, Op, QueryContext, Rows, Table, col, hidden},
};

const COLUMNS: &[Column] = &[
    col("uid", BigInt),
    col("path", Text),
    col("encrypted", Integer),
    col("key_type", Text),
    hidden("pid_with_namespace", Integer),
];
const UID: usize = 0;
const PID_WITH_NAMESPACE: usize = 4;
/// Keys are small: a bigger file is read up to this, and then is no key.
const MAX_BYTES: u64 = 256 << 10;

#[derive(Debug)]
pub struct UserSshKeys;

/// A private key's (encrypted, key type).
#[derive(Debug, PartialEq, Eq)]
pub struct KeyInfo {
    pub encrypted: bool,
    pub key_type: &'static str,
}

/// One DER element at the start of `b`: (tag, contents, rest).
fn der(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *b.first()?;
    let first = *b.get(1)?;
    let (len, at) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | usize::from(*b.get(2 + i)?);
        }
        (len, 2 + n)
    };
    let body = b.get(at..at.checked_add(len)?)?;
    Some((tag, body, &b[at + len..]))
}

/// The key type of a PKCS#8 PrivateKeyInfo, from its algorithm identifier.
fn pkcs8_type(b: &[u8]) -> Option<&'static str> {
    let (0x30, seq, _) = der(b)? else { return None };
    let (0x02, _, rest) = der(seq)? else {
        return None;
    };
    let (0x30, alg, _) = der(rest)? else {
        return None;
    };
    let (0x06, oid, _) = der(alg)? else {
        return None;
    };
    Some(match oid {
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01] => "rsa",
        [0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x01] => "dsa",
        [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01] => "ec",
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x03, 0x01]
        | [0x2a, 0x86, 0x48, 0xce, 0x3e, 0x02, 0x01] => "dh",
        // Ed25519, X25519, RSA-PSS, …: OpenSSL types osquery has no name for.
        _ => "",
    })
}

/// The first PEM block of `s`: (label, headers, decoded body).
fn pem(s: &str) -> Option<(&str, Vec<&str>, Vec<u8>)> {
    let start = s.find("-----BEGIN ")?;
    let rest = &s[start + 11..];
    let (label, rest) = rest.split_once("-----")?;
    let end = rest.find(&format!("-----END {label}-----"))?;
    let mut headers = Vec::new();
    let mut b64 = String::new();
    for line in rest[..end].lines().map(str::trim) {
        if line.contains(':') {
            headers.push(line);
        } else {
            b64.push_str(line);
        }
    }
    let body = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    Some((label, headers, body))
}

/// What a file's text is as a private key; None when it is none.
pub fn classify(s: &str) -> Option<KeyInfo> {
    let (label, headers, body) = pem(s)?;
    let info = |encrypted, key_type| {
        Some(KeyInfo {
            encrypted,
            key_type,
        })
    };
    match label {
        "OPENSSH PRIVATE KEY" => {
            let rest = body.strip_prefix(b"openssh-key-v1\0")?;
            let n = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
            let cipher = rest.get(4..4usize.checked_add(n)?)?;
            info(cipher != b"none", "")
        }
        "ENCRYPTED PRIVATE KEY" => {
            der(&body).filter(|(t, _, _)| *t == 0x30)?;
            info(true, "")
        }
        "PRIVATE KEY" => info(false, pkcs8_type(&body)?),
        "RSA PRIVATE KEY" | "DSA PRIVATE KEY" | "EC PRIVATE KEY" => {
            if headers.iter().any(|h| {
                h.strip_prefix("Proc-Type:")
                    .is_some_and(|v| v.trim().ends_with("ENCRYPTED"))
            }) {
                // OpenSSL cannot tell the type without the passphrase.
                return info(true, "");
            }
            der(&body).filter(|(t, _, _)| *t == 0x30)?;
            info(
                false,
                match label {
                    "RSA PRIVATE KEY" => "rsa",
                    "DSA PRIVATE KEY" => "dsa",
                    _ => "ec",
                },
            )
        }
        _ => None,
    }
}

fn rows_under(root: &Path, pid: i64, ctx: &QueryContext) -> Vec<Vec<Value>> {
    let mut rows = Vec::new();
    for a in accounts(root, ctx, UID) {
        let (dir, _) = in_home(&a, ".ssh");
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut names: Vec<String> = rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for name in names {
            let (path, shown) = in_home(&a, &format!(".ssh/{name}"));
            let Some(b) = read_inside(&a.path, &path, MAX_BYTES, false) else {
                continue;
            };
            let Some(k) = classify(&String::from_utf8_lossy(&b)) else {
                continue;
            };
            rows.push(vec![
                int(a.uid),
                text(shown),
                int(i64::from(k.encrypted)),
                text(k.key_type),
                int(pid),
            ]);
        }
    }
    rows
}

impl Table for UserSshKeys {
    fn name(&self) -> &'static str {
        "user_ssh_keys"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn generate(&self, ctx: &QueryContext) -> Result<Rows, String> {
        let mut rows = Vec::new();
        for at in ns_roots(ctx, PID_WITH_NAMESPACE) {
            rows.extend(rows_under(&at.root, at.pid, ctx));
        }
        Ok(Box::new(rows.into_iter().map(Ok)))
    }
    fn cost(&self, constrained: &[(usize, Op)]) -> f64 {
        uid_cost(constrained, UID)
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;
    use crate::sql::tables::{
        user_files::tests::{fake_root, uid_eq},
        util::tool,
    };

    #[test]
    fn pem_and_openssh_texts_are_classified() {
        let k = |encrypted, key_type| {
            Some(KeyInfo {
                encrypted,
                key_type,
            })
        };
        // "openssh-key-v1\0", cipher "none" / "aes256-ctr".
        let openssh = |cipher: &str| {
            let mut b = b"openssh-key-v1\0".to_vec();
            b.extend((cipher.len() as u32).to_be_bytes());
            b.extend(cipher.as_bytes());
            let body = base64::engine::general_purpose::STANDARD.encode(b);
            format!(
                "-----BEGIN OPENSSH PRIVATE KEY-----\n{body}\n-----END OPENSSH PRIVATE KEY-----\n"
            )
        };
        assert_eq!(classify(&openssh("none")), k(false, ""));
        assert_eq!(classify(&openssh("aes256-ctr")), k(true, ""));
        // PKCS#8 of an EC key: SEQUENCE { INTEGER 0, SEQUENCE { OID id-ecPublicKey } }.
        let p8 = |oid: &[u8]| {
            let mut alg = vec![0x06, oid.len() as u8];
            alg.extend(oid);
            let mut inner = vec![0x02, 0x01, 0x00, 0x30, alg.len() as u8];
            inner.extend(alg);
            let mut b = vec![0x30, inner.len() as u8];
            b.extend(inner);
            let body = base64::engine::general_purpose::STANDARD.encode(b);
            format!("junk before\n-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n")
        };
        assert_eq!(
            classify(&p8(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01])),
            k(false, "ec")
        );
        assert_eq!(
            classify(&p8(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01])),
            k(false, "rsa")
        );
        assert_eq!(classify(&p8(&[0x2b, 0x65, 0x70])), k(false, ""));
        let enc = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nMAA=\n-----END RSA PRIVATE KEY-----\n";
        assert_eq!(classify(enc), k(true, ""));
        let plain = "-----BEGIN DSA PRIVATE KEY-----\nMAA=\n-----END DSA PRIVATE KEY-----\n";
        assert_eq!(classify(plain), k(false, "dsa"));
        for junk in [
            "ssh-ed25519 AAAA me",
            "-----BEGIN PRIVATE KEY-----\n!!\n-----END PRIVATE KEY-----",
            "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----",
            "-----BEGIN EC PRIVATE KEY-----\nMAA=\n",
            "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----",
        ] {
            assert_eq!(classify(junk), None, "{junk}");
        }
    }

    /// The OpenSSL type name osquery would give a key file: openssl's name of the public
    /// key's algorithm, empty when openssl cannot read the key without a passphrase.
    fn openssl_type(f: &Path, dir: &Path) -> String {
        let der = dir.join("pub.der");
        let ok = Command::new("openssl")
            .args([
                "pkey", "-passin", "pass:", "-pubout", "-outform", "DER", "-in",
            ])
            .arg(f)
            .arg("-out")
            .arg(&der)
            .output()
            .unwrap()
            .status
            .success();
        if !ok {
            return String::new();
        }
        let parsed = tool(
            "openssl",
            &["asn1parse", "-inform", "DER", "-in", der.to_str().unwrap()],
        );
        let name = parsed
            .lines()
            .find_map(|l| {
                l.split_once("OBJECT")
                    .map(|(_, o)| o.trim().trim_start_matches(':'))
            })
            .unwrap()
            .to_owned();
        match name.as_str() {
            "rsaEncryption" => "rsa",
            "id-ecPublicKey" => "ec",
            "dsaEncryption" => "dsa",
            _ => "",
        }
        .to_owned()
    }

    /// Keys written by ssh-keygen in every format it has: `encrypted` is whether
    /// `ssh-keygen -y` needs a passphrase, `key_type` what openssl reads (see above).
    #[test]
    fn keys_made_by_ssh_keygen_match_it_and_openssl() {
        let root = fake_root(&[("dave", 1003, "/home/dave"), ("erin", 1004, "/home/erin")]);
        let ssh = root.path().join("home/dave/.ssh");
        std::fs::create_dir(&ssh).unwrap();
        let keys: &[(&str, &[&str])] = &[
            ("a_ed25519", &["-t", "ed25519", "-N", ""]),
            (
                "b_rsa_pem",
                &["-t", "rsa", "-b", "2048", "-m", "PEM", "-N", ""],
            ),
            ("c_ec_pem", &["-t", "ecdsa", "-m", "PEM", "-N", ""]),
            (
                "d_rsa_pkcs8",
                &["-t", "rsa", "-b", "2048", "-m", "PKCS8", "-N", ""],
            ),
            ("e_ed25519_enc", &["-t", "ed25519", "-N", "secret"]),
            (
                "f_ec_pem_enc",
                &["-t", "ecdsa", "-m", "PEM", "-N", "secret"],
            ),
            (
                "g_ec_pkcs8_enc",
                &["-t", "ecdsa", "-m", "PKCS8", "-N", "secret"],
            ),
        ];
        for (name, args) in keys {
            let f = ssh.join(name);
            let mut a: Vec<&str> = vec!["-q", "-C", "", "-f", f.to_str().unwrap()];
            a.extend_from_slice(args);
            tool("ssh-keygen", &a);
        }
        std::fs::write(ssh.join("config"), "Host *\n").unwrap();
        std::fs::write(
            ssh.join("known_hosts"),
            "mirror.example.org ssh-ed25519 AAAA\n",
        )
        .unwrap();

        let rows = rows_under(root.path(), 0, &QueryContext::default());
        let mut want = Vec::new();
        for (name, _) in keys {
            let f = ssh.join(name);
            let encrypted = !Command::new("ssh-keygen")
                .args(["-y", "-P", "", "-f"])
                .arg(&f)
                .output()
                .unwrap()
                .status
                .success();
            want.push(vec![
                int(1003),
                text(format!("/home/dave/.ssh/{name}")),
                int(i64::from(encrypted)),
                text(openssl_type(&f, root.path())),
                int(0),
            ]);
        }
        // The `.pub` files, config and known_hosts are no private keys.
        assert_eq!(rows, want);
        let types: Vec<&Value> = rows.iter().map(|r| &r[3]).collect();
        assert_eq!(
            types,
            [
                &text(""),
                &text("rsa"),
                &text("ec"),
                &text("rsa"),
                &text(""),
                &text(""),
                &text("")
            ]
        );
        assert!(rows_under(root.path(), 0, &uid_eq(UID, 1004)).is_empty());
    }
}
