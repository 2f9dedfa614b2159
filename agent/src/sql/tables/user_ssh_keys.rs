//! `user_ssh_keys`: the private keys among the files of each account's `~/.ssh` folder
//! (accounts and file guards: [`super::user_files`]; `WHERE uid = N` reads one account,
//! `pid_with_namespace` a process's root), whether each is encrypted and what OpenSSL would
//! say of it, as osquery reports: `key_type` (`rsa`, `dsa`, `ec`, `dh`, or empty: an
//! OpenSSH-format key, an encrypted PEM key, Ed25519), `key_group_name` (the EC curve, e.g.
//! `prime256v1`), `key_length` in bits and `key_security_bits` (OpenSSL's estimate; both -1
//! when OpenSSL could not read the key). Recognised: PEM keys (`RSA`/`DSA`/`EC PRIVATE KEY`,
//! with `Proc-Type: 4,ENCRYPTED` when encrypted; PKCS#8 `PRIVATE KEY`, read from its DER;
//! `ENCRYPTED PRIVATE KEY`) and OpenSSH keys (`openssh-key-v1`, encrypted unless the cipher
//! is `none`). Nothing of a key is shown but the file's path.

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
    col("key_group_name", Text),
    col("key_length", Integer),
    col("key_security_bits", Integer),
    hidden("pid_with_namespace", Integer),
];
const UID: usize = 0;
const PID_WITH_NAMESPACE: usize = 7;
/// Keys are small: a bigger file is read up to this, and then is no key.
const MAX_BYTES: u64 = 256 << 10;

#[derive(Debug)]
pub struct UserSshKeys;

/// What a private key file is: encrypted, and what OpenSSL reads of it.
#[derive(Debug, PartialEq, Eq)]
pub struct KeyInfo {
    pub encrypted: bool,
    pub key_type: &'static str,
    pub group: &'static str,
    /// -1 when unknown (OpenSSL cannot read the key), as the two below.
    pub bits: i64,
    pub security_bits: i64,
}

impl KeyInfo {
    /// A key OpenSSL cannot read without more (a passphrase, or the OpenSSH format).
    fn opaque(encrypted: bool) -> Self {
        Self {
            encrypted,
            key_type: "",
            group: "",
            bits: -1,
            security_bits: -1,
        }
    }
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

/// The element at the start of `b` if it has tag `tag`: (contents, rest).
fn expect(b: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (t, body, rest) = der(b)?;
    (t == tag).then_some((body, rest))
}

/// The bit length of a DER INTEGER's contents (a positive number).
fn int_bits(v: &[u8]) -> i64 {
    let v = &v[v.iter().position(|b| *b != 0).unwrap_or(v.len())..];
    match v.first() {
        None => 0,
        Some(top) => (v.len() as i64 - 1) * 8 + i64::from(8 - top.leading_zeros()),
    }
}

/// OpenSSL's security estimate for an RSA modulus or a finite-field prime of `n` bits (the
/// standards' values, else the SP 800-56B formula rounded up to a multiple of 8).
pub fn ffc_security_bits(n: i64) -> i64 {
    match n {
        1024 => 80,
        2048 => 112,
        3072 => 128,
        7680 => 192,
        15360 => 256,
        n if n >= 687_737 => 1200,
        n if n < 8 => 0,
        n => {
            let x = n as f64 * std::f64::consts::LN_2;
            let y = (1.923 * (x * x.ln() * x.ln()).cbrt() - 4.69) / std::f64::consts::LN_2;
            ((y as i64) + 4) & !7
        }
    }
}

/// OpenSSL's DSA/DH estimate: the prime's strength, capped at half the subgroup's bits.
fn dsa_security_bits(p_bits: i64, q_bits: i64) -> i64 {
    let sec = match p_bits {
        b if b >= 15360 => 256,
        b if b >= 7680 => 192,
        b if b >= 3072 => 128,
        b if b >= 2048 => 112,
        b if b >= 1024 => 80,
        _ => 0,
    };
    let half = q_bits / 2;
    if half < 80 { 0 } else { sec.min(half) }
}

/// The named curves OpenSSL knows best: (DER OID contents, name, order bits).
const CURVES: &[(&[u8], &str, i64)] = &[
    (
        &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07],
        "prime256v1",
        256,
    ),
    (&[0x2b, 0x81, 0x04, 0x00, 0x22], "secp384r1", 384),
    (&[0x2b, 0x81, 0x04, 0x00, 0x23], "secp521r1", 521),
    (&[0x2b, 0x81, 0x04, 0x00, 0x0a], "secp256k1", 256),
    (&[0x2b, 0x81, 0x04, 0x00, 0x21], "secp224r1", 224),
    (
        &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x01],
        "prime192v1",
        192,
    ),
    (
        &[0x2b, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x07],
        "brainpoolP256r1",
        256,
    ),
    (
        &[0x2b, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x0b],
        "brainpoolP384r1",
        384,
    ),
    (
        &[0x2b, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x0d],
        "brainpoolP512r1",
        512,
    ),
];

/// An EC key on the curve of OID `oid`.
fn ec_key(oid: Option<&[u8]>) -> KeyInfo {
    let (group, bits) = oid
        .and_then(|o| CURVES.iter().find(|(c, ..)| *c == o))
        .map_or(("", -1), |(_, n, b)| (*n, *b));
    let security_bits = match bits {
        -1 => -1,
        b if b >= 512 => 256,
        b if b >= 384 => 192,
        b if b >= 256 => 128,
        b if b >= 224 => 112,
        b if b >= 160 => 80,
        b => b / 2,
    };
    KeyInfo {
        encrypted: false,
        key_type: "ec",
        group,
        bits,
        security_bits,
    }
}

fn plain(key_type: &'static str, bits: i64, security_bits: i64) -> KeyInfo {
    KeyInfo {
        encrypted: false,
        key_type,
        group: "",
        bits,
        security_bits,
    }
}

/// A PKCS#1 RSAPrivateKey: SEQUENCE { version, n, e, … }.
fn rsa_key(b: &[u8]) -> Option<KeyInfo> {
    let (seq, _) = expect(b, 0x30)?;
    let (_, rest) = expect(seq, 0x02)?;
    let (n, _) = expect(rest, 0x02)?;
    let bits = int_bits(n);
    Some(plain("rsa", bits, ffc_security_bits(bits)))
}

/// A traditional DSA key: SEQUENCE { version, p, q, g, y, x }.
fn dsa_key(b: &[u8]) -> Option<KeyInfo> {
    let (seq, _) = expect(b, 0x30)?;
    let (_, rest) = expect(seq, 0x02)?;
    let (p, rest) = expect(rest, 0x02)?;
    let (q, _) = expect(rest, 0x02)?;
    let (pb, qb) = (int_bits(p), int_bits(q));
    Some(plain("dsa", pb, dsa_security_bits(pb, qb)))
}

/// A SEC1 ECPrivateKey: SEQUENCE { version, key, [0] curve OID, … }.
fn sec1_key(b: &[u8]) -> Option<KeyInfo> {
    let (seq, _) = expect(b, 0x30)?;
    let (_, rest) = expect(seq, 0x02)?;
    let (_, mut rest) = expect(rest, 0x04)?;
    let mut oid = None;
    while let Some((tag, body, r)) = der(rest) {
        if tag == 0xa0 {
            oid = expect(body, 0x06).map(|(o, _)| o);
        }
        rest = r;
    }
    Some(ec_key(oid))
}

/// A PKCS#8 PrivateKeyInfo: SEQUENCE { version, AlgorithmIdentifier, OCTET STRING key }.
fn pkcs8_key(b: &[u8]) -> Option<KeyInfo> {
    let (seq, _) = expect(b, 0x30)?;
    let (_, rest) = expect(seq, 0x02)?;
    let (alg, rest) = expect(rest, 0x30)?;
    let (oid, params) = expect(alg, 0x06)?;
    let key = expect(rest, 0x04).map(|(k, _)| k);
    Some(match oid {
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01] => rsa_key(key?)?,
        [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01] => ec_key(expect(params, 0x06).map(|(o, _)| o)),
        [0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x01] => {
            // Dss-Parms: SEQUENCE { p, q, g }.
            let (dp, _) = expect(params, 0x30)?;
            let (p, r) = expect(dp, 0x02)?;
            let (q, _) = expect(r, 0x02)?;
            let (pb, qb) = (int_bits(p), int_bits(q));
            plain("dsa", pb, dsa_security_bits(pb, qb))
        }
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x03, 0x01]
        | [0x2a, 0x86, 0x48, 0xce, 0x3e, 0x02, 0x01] => {
            let (dp, _) = expect(params, 0x30)?;
            let (p, _) = expect(dp, 0x02)?;
            let pb = int_bits(p);
            plain("dh", pb, ffc_security_bits(pb))
        }
        // Ed25519, X25519, Ed448, X448: types osquery has no name for.
        [0x2b, 0x65, 0x70] | [0x2b, 0x65, 0x6e] => plain("", 253, 128),
        [0x2b, 0x65, 0x71] => plain("", 456, 224),
        [0x2b, 0x65, 0x6f] => plain("", 448, 224),
        _ => plain("", -1, -1),
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
    match label {
        "OPENSSH PRIVATE KEY" => {
            let rest = body.strip_prefix(b"openssh-key-v1\0")?;
            let n = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
            let cipher = rest.get(4..4usize.checked_add(n)?)?;
            Some(KeyInfo::opaque(cipher != b"none"))
        }
        "ENCRYPTED PRIVATE KEY" => {
            expect(&body, 0x30)?;
            Some(KeyInfo::opaque(true))
        }
        "PRIVATE KEY" => pkcs8_key(&body),
        "RSA PRIVATE KEY" | "DSA PRIVATE KEY" | "EC PRIVATE KEY" => {
            if headers.iter().any(|h| {
                h.strip_prefix("Proc-Type:")
                    .is_some_and(|v| v.trim().ends_with("ENCRYPTED"))
            }) {
                // OpenSSL cannot tell the type without the passphrase.
                return Some(KeyInfo::opaque(true));
            }
            match label {
                "RSA PRIVATE KEY" => rsa_key(&body),
                "DSA PRIVATE KEY" => dsa_key(&body),
                _ => sec1_key(&body),
            }
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
                text(k.group),
                int(k.bits),
                int(k.security_bits),
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

    fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        match body.len() {
            n if n < 0x80 => v.push(n as u8),
            n if n < 0x100 => v.extend([0x81, n as u8]),
            n => v.extend([0x82, (n >> 8) as u8, n as u8]),
        }
        v.extend(body);
        v
    }

    fn armor(label: &str, der: &[u8]) -> String {
        let b = base64::engine::general_purpose::STANDARD.encode(der);
        format!("-----BEGIN {label}-----\n{b}\n-----END {label}-----\n")
    }

    /// A positive INTEGER of `bits` bits (top bit set, so a leading zero byte).
    fn big(bits: usize) -> Vec<u8> {
        let mut v = vec![0u8; bits / 8 + 1];
        v[1] = 0x80;
        tlv(0x02, &v)
    }

    fn k(
        key_type: &'static str,
        group: &'static str,
        bits: i64,
        security_bits: i64,
    ) -> Option<KeyInfo> {
        Some(KeyInfo {
            encrypted: false,
            key_type,
            group,
            bits,
            security_bits,
        })
    }

    #[test]
    fn pem_and_openssh_texts_are_classified() {
        // "openssh-key-v1\0", cipher "none" / "aes256-ctr".
        let openssh = |cipher: &str| {
            let mut b = b"openssh-key-v1\0".to_vec();
            b.extend((cipher.len() as u32).to_be_bytes());
            b.extend(cipher.as_bytes());
            armor("OPENSSH PRIVATE KEY", &b)
        };
        assert_eq!(classify(&openssh("none")), Some(KeyInfo::opaque(false)));
        assert_eq!(
            classify(&openssh("aes256-ctr")),
            Some(KeyInfo::opaque(true))
        );
        let zero = tlv(0x02, &[0]);
        let rsa1 = tlv(
            0x30,
            &[zero.clone(), big(2048), tlv(0x02, &[1, 0, 1])].concat(),
        );
        assert_eq!(
            classify(&armor("RSA PRIVATE KEY", &rsa1)),
            k("rsa", "", 2048, 112)
        );
        let p8 = |alg: Vec<u8>, key: &[u8]| {
            tlv(
                0x30,
                &[zero.clone(), tlv(0x30, &alg), tlv(0x04, key)].concat(),
            )
        };
        let rsa_oid = tlv(
            0x06,
            &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01],
        );
        let rsa4096 = tlv(0x30, &[zero.clone(), big(4096), tlv(0x02, &[3])].concat());
        assert_eq!(
            classify(&format!(
                "junk first\n{}",
                armor(
                    "PRIVATE KEY",
                    &p8([rsa_oid, tlv(0x05, &[])].concat(), &rsa4096)
                )
            )),
            k("rsa", "", 4096, 152)
        );
        let ec_oid = tlv(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]);
        let p384 = tlv(0x06, &[0x2b, 0x81, 0x04, 0x00, 0x22]);
        assert_eq!(
            classify(&armor(
                "PRIVATE KEY",
                &p8([ec_oid, p384.clone()].concat(), &[])
            )),
            k("ec", "secp384r1", 384, 192)
        );
        let sec1 = tlv(
            0x30,
            &[
                tlv(0x02, &[1]),
                tlv(0x04, &[7; 66]),
                tlv(0xa0, &tlv(0x06, &[0x2b, 0x81, 0x04, 0x00, 0x23])),
            ]
            .concat(),
        );
        assert_eq!(
            classify(&armor("EC PRIVATE KEY", &sec1)),
            k("ec", "secp521r1", 521, 256)
        );
        let dsa = tlv(
            0x30,
            &[zero.clone(), big(1024), big(160), big(1024)].concat(),
        );
        assert_eq!(
            classify(&armor("DSA PRIVATE KEY", &dsa)),
            k("dsa", "", 1024, 80)
        );
        assert_eq!(
            classify(&armor(
                "PRIVATE KEY",
                &p8(tlv(0x06, &[0x2b, 0x65, 0x70]), &[])
            )),
            k("", "", 253, 128)
        );
        let enc = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nq83vEjRWeJA=\n-----END RSA PRIVATE KEY-----\n";
        assert_eq!(classify(enc), Some(KeyInfo::opaque(true)));
        assert_eq!(
            classify(&armor("ENCRYPTED PRIVATE KEY", &tlv(0x30, &[]))),
            Some(KeyInfo::opaque(true))
        );
        for junk in [
            "ssh-ed25519 AAAA me".to_owned(),
            "-----BEGIN PRIVATE KEY-----\n!!\n-----END PRIVATE KEY-----".to_owned(),
            armor("CERTIFICATE", &tlv(0x30, &[])),
            armor("RSA PRIVATE KEY", &tlv(0x30, &[])),
            "-----BEGIN EC PRIVATE KEY-----\nMAA=\n".to_owned(),
            armor("OPENSSH PRIVATE KEY", b"other"),
        ] {
            assert_eq!(classify(&junk), None, "{junk}");
        }
        // OpenSSL's figures for common sizes, and its formula between them.
        let sec: Vec<i64> = [1024, 2048, 3072, 4096, 8192, 15360]
            .map(ffc_security_bits)
            .to_vec();
        assert_eq!(sec, [80, 112, 128, 152, 200, 256]);
    }

    /// What openssl reads of a key file: (type name as osquery gives it, curve, bits), or
    /// ("", "", -1) when it cannot read it without a passphrase.
    fn openssl_view(f: &Path, dir: &Path) -> (String, String, i64) {
        let out = Command::new("openssl")
            .args(["pkey", "-passin", "pass:", "-noout", "-text", "-in"])
            .arg(f)
            .output()
            .unwrap();
        if !out.status.success() {
            return (String::new(), String::new(), -1);
        }
        let text_ = String::from_utf8_lossy(&out.stdout).into_owned();
        let bits: i64 = text_
            .lines()
            .find_map(|l| l.split_once("Private-Key: (").map(|(_, r)| r))
            .and_then(|r| r.split(' ').next())
            .unwrap()
            .parse()
            .unwrap();
        let curve = text_
            .lines()
            .find_map(|l| l.trim().strip_prefix("ASN1 OID: "))
            .unwrap_or("")
            .to_owned();
        let der = dir.join("pub.der");
        let pub_ok = Command::new("openssl")
            .args([
                "pkey", "-passin", "pass:", "-pubout", "-outform", "DER", "-in",
            ])
            .arg(f)
            .arg("-out")
            .arg(&der)
            .status()
            .unwrap()
            .success();
        assert!(pub_ok);
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
        let ty = match name.as_str() {
            "rsaEncryption" => "rsa",
            "id-ecPublicKey" => "ec",
            "dsaEncryption" => "dsa",
            _ => "",
        };
        (ty.to_owned(), curve, bits)
    }

    /// Keys written by ssh-keygen in every format it has: `encrypted` is whether
    /// `ssh-keygen -y` needs a passphrase; type, curve and length what openssl reads.
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
                &["-t", "rsa", "-b", "3072", "-m", "PKCS8", "-N", ""],
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
            (
                "h_ec384_pkcs8",
                &["-t", "ecdsa", "-b", "384", "-m", "PKCS8", "-N", ""],
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
            let (ty, curve, bits) = openssl_view(&f, root.path());
            // Security bits: OpenSSL's for these sizes (it prints none).
            let security = match (ty.as_str(), bits) {
                (_, -1) => -1,
                ("rsa", b) => ffc_security_bits(b),
                ("ec", b) => b / 2,
                _ => panic!("{ty} {bits}"),
            };
            want.push(vec![
                int(1003),
                text(format!("/home/dave/.ssh/{name}")),
                int(i64::from(encrypted)),
                text(ty),
                text(curve),
                int(bits),
                int(security),
                int(0),
            ]);
        }
        // The `.pub` files, config and known_hosts are no private keys.
        assert_eq!(rows, want);
        let summary: Vec<(&Value, &Value, &Value)> =
            rows.iter().map(|r| (&r[3], &r[5], &r[6])).collect();
        assert_eq!(
            summary,
            [
                (&text(""), &int(-1), &int(-1)),
                (&text("rsa"), &int(2048), &int(112)),
                (&text("ec"), &int(256), &int(128)),
                (&text("rsa"), &int(3072), &int(128)),
                (&text(""), &int(-1), &int(-1)),
                (&text(""), &int(-1), &int(-1)),
                (&text(""), &int(-1), &int(-1)),
                (&text("ec"), &int(384), &int(192)),
            ]
        );
        assert_eq!(rows[2][4], text("prime256v1"));
        assert!(rows_under(root.path(), 0, &uid_eq(UID, 1004)).is_empty());
    }
}
