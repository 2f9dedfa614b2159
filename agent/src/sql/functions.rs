//! osquery's SQL functions and collations, registered on every connection, so that Fleet's
//! and osquery users' queries run unchanged: `concat`, `concat_ws`, `split`, `regex_split`,
//! `regex_match`, `inet_aton`, `in_cidr_block`, `version_compare`, `community_id_v1`, `md5`,
//! `sha1`, `sha256`, `to_base64`, `from_base64`, `conditional_to_base64`,
//! `parent_directory`, the math functions (`sqrt`, `log`, `log10`, `ceil`, `floor`, `power`,
//! `pi`, `sin`, `cos`, `tan`, `cot`, `asin`, `acos`, `atan`, `degrees`, `radians`), and the
//! collations `version`, `version_dpkg` (the `debversion` crate) and `version_rhel` (rpm's
//! `rpmvercmp`, written here: no maintained crate implements it).
//!
//! Bad input never fails a query: a function that cannot make sense of its arguments returns
//! NULL, as osquery's do.

use std::{
    cmp::Ordering,
    net::{IpAddr, Ipv4Addr},
};

use base64::Engine as _;
use rusqlite::{
    Connection, Result,
    functions::{Context, FunctionFlags},
    types::{Value, ValueRef},
};

use crate::sys::hash::hex;

fn flags() -> FunctionFlags {
    FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC
}

/// Argument `i` as text (numbers in their SQLite text form); None for NULL.
fn text(ctx: &Context<'_>, i: usize) -> Option<String> {
    match ctx.get_raw(i) {
        ValueRef::Null => None,
        ValueRef::Integer(n) => Some(n.to_string()),
        ValueRef::Real(f) => Some(f.to_string()),
        ValueRef::Text(t) | ValueRef::Blob(t) => Some(String::from_utf8_lossy(t).into_owned()),
    }
}

fn bytes(ctx: &Context<'_>, i: usize) -> Option<Vec<u8>> {
    match ctx.get_raw(i) {
        ValueRef::Null => None,
        ValueRef::Text(t) | ValueRef::Blob(t) => Some(t.to_vec()),
        _ => text(ctx, i).map(String::into_bytes),
    }
}

fn int(ctx: &Context<'_>, i: usize) -> Option<i64> {
    match ctx.get_raw(i) {
        ValueRef::Integer(n) => Some(n),
        ValueRef::Real(f) => Some(f as i64),
        ValueRef::Text(t) => std::str::from_utf8(t).ok()?.trim().parse().ok(),
        _ => None,
    }
}

fn real(ctx: &Context<'_>, i: usize) -> Option<f64> {
    match ctx.get_raw(i) {
        ValueRef::Integer(n) => Some(n as f64),
        ValueRef::Real(f) => Some(f),
        ValueRef::Text(t) => std::str::from_utf8(t).ok()?.trim().parse().ok(),
        _ => None,
    }
}

/// The `index`-th non-empty piece of `s` split at any of the characters of `tokens`.
pub fn split(s: &str, tokens: &str, index: i64) -> Option<String> {
    let index = usize::try_from(index).ok()?;
    s.split(|c| tokens.contains(c))
        .filter(|p| !p.is_empty())
        .nth(index)
        .map(str::to_owned)
}

/// The IPv4 address as a number (`1.2.3.4` is 16909060).
pub fn inet_aton(s: &str) -> Option<i64> {
    s.trim()
        .parse::<Ipv4Addr>()
        .ok()
        .map(|a| i64::from(u32::from(a)))
}

/// Whether `ip` is in `cidr` (IPv4 or IPv6; a bare address is its own /32 or /128).
pub fn in_cidr_block(cidr: &str, ip: &str) -> Option<bool> {
    let (net, bits) = match cidr.trim().split_once('/') {
        Some((n, b)) => (n.parse::<IpAddr>().ok()?, Some(b.parse::<u32>().ok()?)),
        None => (cidr.trim().parse::<IpAddr>().ok()?, None),
    };
    let ip = ip.trim().parse::<IpAddr>().ok()?;
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let bits = bits.unwrap_or(32);
            if bits > 32 {
                return None;
            }
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            Some(u32::from(n) & mask == u32::from(a) & mask)
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let bits = bits.unwrap_or(128);
            if bits > 128 {
                return None;
            }
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            Some(u128::from(n) & mask == u128::from(a) & mask)
        }
        _ => Some(false),
    }
}

/// Generic version order: numeric runs compare as numbers, other runs as text, separators
/// (`.`, `-`, `_`, `+`, `:`, `~`) only split.
pub fn version_cmp(a: &str, b: &str) -> Ordering {
    fn parts(s: &str) -> Vec<(bool, &str)> {
        let mut out = Vec::new();
        let mut start = None;
        let mut numeric = false;
        for (i, c) in s.char_indices() {
            let sep = !c.is_alphanumeric();
            let digit = c.is_ascii_digit();
            match start {
                Some(st) if sep || digit != numeric => {
                    out.push((numeric, &s[st..i]));
                    start = (!sep).then_some(i);
                    numeric = digit;
                }
                None if !sep => {
                    start = Some(i);
                    numeric = digit;
                }
                _ => {}
            }
        }
        if let Some(st) = start {
            out.push((numeric, &s[st..]));
        }
        out
    }
    let (pa, pb) = (parts(a), parts(b));
    for (x, y) in pa.iter().zip(&pb) {
        let o = match (x, y) {
            ((true, x), (true, y)) => {
                let (x, y) = (x.trim_start_matches('0'), y.trim_start_matches('0'));
                x.len().cmp(&y.len()).then_with(|| x.cmp(y))
            }
            ((true, _), (false, _)) => Ordering::Greater,
            ((false, _), (true, _)) => Ordering::Less,
            ((false, x), (false, y)) => x.cmp(y),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    pa.len().cmp(&pb.len())
}

/// dpkg's order (epoch, upstream, revision, `~` before everything); strings that are not
/// Debian versions compare as text after those that are.
pub fn dpkg_cmp(a: &str, b: &str) -> Ordering {
    match (
        a.parse::<debversion::Version>(),
        b.parse::<debversion::Version>(),
    ) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        (Ok(_), Err(_)) => Ordering::Less,
        (Err(_), Ok(_)) => Ordering::Greater,
        (Err(_), Err(_)) => a.cmp(b),
    }
}

/// rpm's `rpmvercmp` on one string: alternating runs of digits and letters, other
/// characters separate, `~` sorts before everything, `^` after the end but before more.
pub fn rpm_cmp(a: &str, b: &str) -> Ordering {
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    if x == y {
        return Ordering::Equal;
    }
    let sep = |c: u8| !c.is_ascii_alphanumeric() && c != b'~' && c != b'^';
    loop {
        while let Some((&c, rest)) = x.split_first()
            && sep(c)
        {
            x = rest;
        }
        while let Some((&c, rest)) = y.split_first()
            && sep(c)
        {
            y = rest;
        }
        match (x.first(), y.first()) {
            (Some(b'~'), Some(b'~')) => {
                x = &x[1..];
                y = &y[1..];
                continue;
            }
            (Some(b'~'), _) => return Ordering::Less,
            (_, Some(b'~')) => return Ordering::Greater,
            (Some(b'^'), Some(b'^')) => {
                x = &x[1..];
                y = &y[1..];
                continue;
            }
            (Some(b'^'), None) => return Ordering::Greater,
            (None, Some(b'^')) => return Ordering::Less,
            (Some(b'^'), _) => return Ordering::Less,
            (_, Some(b'^')) => return Ordering::Greater,
            (None, None) => return Ordering::Equal,
            (None, _) => return Ordering::Less,
            (_, None) => return Ordering::Greater,
            _ => {}
        }
        let numeric = x[0].is_ascii_digit();
        let run = |s: &[u8]| {
            s.iter()
                .take_while(|c| {
                    if numeric {
                        c.is_ascii_digit()
                    } else {
                        c.is_ascii_alphabetic()
                    }
                })
                .count()
        };
        let (nx, ny) = (run(x), run(y));
        if ny == 0 {
            // One numeric, one alphabetic: the numeric one is newer.
            return if numeric {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let (sx, sy) = (&x[..nx], &y[..ny]);
        let o = if numeric {
            let tx = &sx[sx.iter().take_while(|c| **c == b'0').count()..];
            let ty = &sy[sy.iter().take_while(|c| **c == b'0').count()..];
            tx.len().cmp(&ty.len()).then_with(|| tx.cmp(ty))
        } else {
            sx.cmp(sy)
        };
        if o != Ordering::Equal {
            return o;
        }
        x = &x[nx..];
        y = &y[ny..];
    }
}

/// Community ID v1 (the published flow-hash spec): `1:` and the base64 of SHA-1 over seed,
/// the ordered addresses, protocol, a zero byte and the ordered ports.
pub fn community_id_v1(
    src: &str,
    dst: &str,
    sport: u16,
    dport: u16,
    proto: u8,
    seed: u16,
) -> Option<String> {
    use sha1::Digest as _;
    let (s, d) = (src.parse::<IpAddr>().ok()?, dst.parse::<IpAddr>().ok()?);
    let octets = |a: IpAddr| match a {
        IpAddr::V4(v) => v.octets().to_vec(),
        IpAddr::V6(v) => v.octets().to_vec(),
    };
    let (mut a, mut b) = ((octets(s), sport), (octets(d), dport));
    if a.0.len() != b.0.len() {
        return None;
    }
    if (&a.0, a.1) > (&b.0, b.1) {
        std::mem::swap(&mut a, &mut b);
    }
    let mut h = sha1::Sha1::new();
    h.update(seed.to_be_bytes());
    h.update(&a.0);
    h.update(&b.0);
    h.update([proto, 0]);
    h.update(a.1.to_be_bytes());
    h.update(b.1.to_be_bytes());
    Some(format!(
        "1:{}",
        base64::engine::general_purpose::STANDARD.encode(h.finalize())
    ))
}

/// The folder of `path` (`/a/b/c` → `/a/b`, `/a` → `/`).
pub fn parent_directory(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    match trimmed.rfind('/') {
        Some(0) => "/".into(),
        Some(i) => trimmed[..i].to_owned(),
        None => String::new(),
    }
}

fn math(conn: &Connection, name: &'static str, f: fn(f64) -> f64) -> Result<()> {
    conn.create_scalar_function(name, 1, flags(), move |ctx| {
        Ok(real(ctx, 0).map(f).filter(|v| v.is_finite()))
    })
}

/// Registers every function and collation on `conn`.
pub fn register(conn: &Connection) -> Result<()> {
    conn.create_scalar_function("concat", -1, flags(), |ctx| {
        Ok((0..ctx.len())
            .filter_map(|i| text(ctx, i))
            .collect::<String>())
    })?;
    conn.create_scalar_function("concat_ws", -1, flags(), |ctx| {
        if ctx.is_empty() {
            return Ok(None);
        }
        let Some(sep) = text(ctx, 0) else {
            return Ok(None);
        };
        let parts: Vec<String> = (1..ctx.len()).filter_map(|i| text(ctx, i)).collect();
        Ok(Some(parts.join(&sep)))
    })?;
    conn.create_scalar_function("split", 3, flags(), |ctx| {
        Ok(match (text(ctx, 0), text(ctx, 1), int(ctx, 2)) {
            (Some(s), Some(t), Some(i)) => split(&s, &t, i),
            _ => None,
        })
    })?;
    conn.create_scalar_function("regex_split", 3, flags(), |ctx| {
        Ok(match (text(ctx, 0), text(ctx, 1), int(ctx, 2)) {
            (Some(s), Some(re), Some(i)) => regex::Regex::new(&re).ok().and_then(|re| {
                re.split(&s)
                    .filter(|p| !p.is_empty())
                    .nth(usize::try_from(i).ok()?)
                    .map(str::to_owned)
            }),
            _ => None,
        })
    })?;
    conn.create_scalar_function("regex_match", 3, flags(), |ctx| {
        Ok(match (text(ctx, 0), text(ctx, 1), int(ctx, 2)) {
            (Some(s), Some(re), Some(i)) => regex::Regex::new(&re).ok().and_then(|re| {
                re.captures(&s)?
                    .get(usize::try_from(i).ok()?)
                    .map(|m| m.as_str().to_owned())
            }),
            _ => None,
        })
    })?;
    conn.create_scalar_function("inet_aton", 1, flags(), |ctx| {
        Ok(text(ctx, 0).and_then(|s| inet_aton(&s)))
    })?;
    conn.create_scalar_function("in_cidr_block", 2, flags(), |ctx| {
        Ok(match (text(ctx, 0), text(ctx, 1)) {
            (Some(c), Some(ip)) => in_cidr_block(&c, &ip).map(i64::from),
            _ => None,
        })
    })?;
    conn.create_scalar_function("version_compare", -1, flags(), |ctx| {
        if ctx.len() < 2 {
            return Ok(None);
        }
        let (Some(a), Some(b)) = (text(ctx, 0), text(ctx, 1)) else {
            return Ok(None);
        };
        let kind = if ctx.len() > 2 { text(ctx, 2) } else { None };
        let o = match kind.as_deref() {
            Some("dpkg" | "deb" | "version_dpkg") => dpkg_cmp(&a, &b),
            Some("rhel" | "rpm" | "version_rhel") => rpm_cmp(&a, &b),
            _ => version_cmp(&a, &b),
        };
        Ok(Some(o as i64))
    })?;
    conn.create_scalar_function("community_id_v1", -1, flags(), |ctx| {
        if ctx.len() < 5 {
            return Ok(None);
        }
        let port = |i| int(ctx, i).and_then(|p| u16::try_from(p).ok());
        let seed = if ctx.len() > 5 { port(5) } else { Some(0) };
        Ok(
            match (
                text(ctx, 0),
                text(ctx, 1),
                port(2),
                port(3),
                int(ctx, 4).and_then(|p| u8::try_from(p).ok()),
                seed,
            ) {
                (Some(s), Some(d), Some(sp), Some(dp), Some(pr), Some(seed)) => {
                    community_id_v1(&s, &d, sp, dp, pr, seed)
                }
                _ => None,
            },
        )
    })?;
    conn.create_scalar_function("md5", 1, flags(), |ctx| {
        use md5::Digest as _;
        Ok(bytes(ctx, 0).map(|b| hex(&md5::Md5::digest(&b))))
    })?;
    conn.create_scalar_function("sha1", 1, flags(), |ctx| {
        use sha1::Digest as _;
        Ok(bytes(ctx, 0).map(|b| hex(&sha1::Sha1::digest(&b))))
    })?;
    conn.create_scalar_function("sha256", 1, flags(), |ctx| {
        use sha2::Digest as _;
        Ok(bytes(ctx, 0).map(|b| hex(&sha2::Sha256::digest(&b))))
    })?;
    conn.create_scalar_function("to_base64", 1, flags(), |ctx| {
        let b64 = base64::engine::general_purpose::STANDARD;
        Ok(bytes(ctx, 0).map(|b| b64.encode(b)))
    })?;
    conn.create_scalar_function("from_base64", 1, flags(), |ctx| {
        let b64 = base64::engine::general_purpose::STANDARD;
        Ok(text(ctx, 0)
            .and_then(|s| b64.decode(s.trim()).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned()))
    })?;
    conn.create_scalar_function("conditional_to_base64", 1, flags(), |ctx| {
        let b64 = base64::engine::general_purpose::STANDARD;
        Ok(bytes(ctx, 0).map(|b| {
            if b.iter().all(|c| (0x20..0x7f).contains(c)) {
                Value::Text(String::from_utf8_lossy(&b).into_owned())
            } else {
                Value::Text(b64.encode(&b))
            }
        }))
    })?;
    conn.create_scalar_function("parent_directory", 1, flags(), |ctx| {
        Ok(text(ctx, 0).map(|p| parent_directory(&p)))
    })?;
    for (name, f) in [
        ("sqrt", f64::sqrt as fn(f64) -> f64),
        ("log", f64::ln),
        ("log10", f64::log10),
        ("ceil", f64::ceil),
        ("floor", f64::floor),
        ("sin", f64::sin),
        ("cos", f64::cos),
        ("tan", f64::tan),
        ("cot", |x: f64| 1.0 / x.tan()),
        ("asin", f64::asin),
        ("acos", f64::acos),
        ("atan", f64::atan),
        ("degrees", f64::to_degrees),
        ("radians", f64::to_radians),
    ] {
        math(conn, name, f)?;
    }
    conn.create_scalar_function("power", 2, flags(), |ctx| {
        Ok(match (real(ctx, 0), real(ctx, 1)) {
            (Some(x), Some(y)) => Some(x.powf(y)).filter(|v| v.is_finite()),
            _ => None,
        })
    })?;
    conn.create_scalar_function("pi", 0, flags(), |_| Ok(std::f64::consts::PI))?;
    conn.create_collation("version", version_cmp)?;
    conn.create_collation("version_dpkg", dpkg_cmp)?;
    conn.create_collation("version_rhel", rpm_cmp)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(sql: &str) -> Value {
        let conn = Connection::open_in_memory().unwrap();
        register(&conn).unwrap();
        conn.query_row(sql, [], |r| r.get::<_, Value>(0)).unwrap()
    }

    fn t(s: &str) -> Value {
        Value::Text(s.into())
    }

    #[test]
    fn string_functions_as_osquery() {
        assert_eq!(one("SELECT concat('a', NULL, 1, 'b')"), t("a1b"));
        assert_eq!(one("SELECT concat_ws('-', 'a', NULL, 'b', 2)"), t("a-b-2"));
        assert_eq!(one("SELECT split('a::b:c', ':', 1)"), t("b"));
        assert_eq!(one("SELECT split('a b', ' ', 5)"), Value::Null);
        assert_eq!(one("SELECT regex_split('a1b22c', '[0-9]+', 2)"), t("c"));
        assert_eq!(
            one("SELECT regex_match('eth0 inet 10.1.2.3/24', '([0-9.]+)/([0-9]+)', 2)"),
            t("24")
        );
        assert_eq!(one("SELECT regex_match('x', '(', 0)"), Value::Null);
        assert_eq!(one("SELECT parent_directory('/a/b/c')"), t("/a/b"));
        assert_eq!(one("SELECT parent_directory('/a')"), t("/"));
    }

    #[test]
    fn network_functions() {
        assert_eq!(
            one("SELECT inet_aton('1.2.3.4')"),
            Value::Integer(16_909_060)
        );
        assert_eq!(one("SELECT inet_aton('nope')"), Value::Null);
        assert_eq!(
            one("SELECT in_cidr_block('10.0.0.0/8', '10.9.8.7')"),
            Value::Integer(1)
        );
        assert_eq!(
            one("SELECT in_cidr_block('10.0.0.0/8', '11.0.0.1')"),
            Value::Integer(0)
        );
        assert_eq!(
            one("SELECT in_cidr_block('fe80::/10', 'fe80::1')"),
            Value::Integer(1)
        );
        assert_eq!(
            one("SELECT in_cidr_block('10.0.0.0/99', '10.0.0.1')"),
            Value::Null
        );
        // The specification's own example: TCP 128.232.110.120:34855 → 66.35.250.204:80.
        assert_eq!(
            one("SELECT community_id_v1('128.232.110.120', '66.35.250.204', 34855, 80, 6)"),
            t("1:LQU9qZlK+B5F3KDmev6m5PMibrg=")
        );
        // The flow's other direction has the same ID.
        assert_eq!(
            one("SELECT community_id_v1('66.35.250.204', '128.232.110.120', 80, 34855, 6)"),
            t("1:LQU9qZlK+B5F3KDmev6m5PMibrg=")
        );
    }

    #[test]
    fn hashes_and_base64() {
        assert_eq!(
            one("SELECT md5('abc')"),
            t("900150983cd24fb0d6963f7d28e17f72")
        );
        assert_eq!(
            one("SELECT sha1('abc')"),
            t("a9993e364706816aba3e25717850c26c9cd0d89d")
        );
        assert_eq!(
            one("SELECT sha256('abc')"),
            t("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        assert_eq!(one("SELECT to_base64('osprey')"), t("b3NwcmV5"));
        assert_eq!(one("SELECT from_base64('b3NwcmV5')"), t("osprey"));
        assert_eq!(one("SELECT from_base64('***')"), Value::Null);
        assert_eq!(one("SELECT conditional_to_base64('plain')"), t("plain"));
        assert_eq!(one("SELECT conditional_to_base64(x'00ff')"), t("AP8="));
    }

    #[test]
    fn math_functions() {
        assert_eq!(one("SELECT sqrt(16)"), Value::Real(4.0));
        assert_eq!(one("SELECT sqrt(-1)"), Value::Null);
        assert_eq!(one("SELECT power(2, 10)"), Value::Real(1024.0));
        assert_eq!(one("SELECT ceil(1.2)"), Value::Real(2.0));
        assert_eq!(one("SELECT floor('2.7')"), Value::Real(2.0));
        assert_eq!(one("SELECT round(degrees(pi()))"), Value::Real(180.0));
        assert_eq!(one("SELECT log10(1000)"), Value::Real(3.0));
        assert_eq!(one("SELECT sqrt('x')"), Value::Null);
    }

    #[test]
    fn versions_compare_and_collate() {
        assert_eq!(
            one("SELECT version_compare('1.10', '1.9')"),
            Value::Integer(1)
        );
        assert_eq!(
            one("SELECT version_compare('1.0', '1.0')"),
            Value::Integer(0)
        );
        assert_eq!(
            one("SELECT version_compare('1:1.0', '2.0', 'dpkg')"),
            Value::Integer(1)
        );
        assert_eq!(dpkg_cmp("1.0~rc1-1", "1.0-1"), Ordering::Less);
        assert_eq!(
            dpkg_cmp("2.36-9+deb12u4", "2.36-9+deb12u10"),
            Ordering::Less
        );
        assert_eq!(rpm_cmp("1.0~rc1", "1.0"), Ordering::Less);
        assert_eq!(rpm_cmp("1.0a", "1.0"), Ordering::Greater);
        assert_eq!(rpm_cmp("1.0^git1", "1.0"), Ordering::Greater);
        assert_eq!(rpm_cmp("1.0^git1", "1.0.1"), Ordering::Less);
        assert_eq!(rpm_cmp("2.0", "10"), Ordering::Less);
        assert_eq!(rpm_cmp("1.01", "1.1"), Ordering::Equal);
        assert_eq!(version_cmp("1.2.10", "1.2.9"), Ordering::Greater);
        assert_eq!(
            one(
                "SELECT group_concat(v) FROM (SELECT v FROM (SELECT '1.10-1' AS v UNION ALL SELECT '1.9-1' UNION ALL SELECT '1:0.1-1' UNION ALL SELECT '1.9~b1-1') ORDER BY v COLLATE version_dpkg)"
            ),
            t("1.9~b1-1,1.9-1,1.10-1,1:0.1-1")
        );
    }
}
