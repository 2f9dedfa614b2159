//! `block_devices`: every block device of `/sys/class/block` (osquery's columns). `parent` is
//! the disk a partition lives in, or for a device-mapper/MD device the first device of its
//! `slaves/`; `size` in 512-byte sectors (sysfs `size`), `block_size` the logical block size;
//! `vendor`, `model`, `serial` from the device (`device/vendor`, `device/model`,
//! `device/wwid` or `device/serial`), which partitions and mappings take from their parent.
//! `uuid`, `type`, `label`: osquery asks libblkid; this build reads the superblock itself
//! (root only) and knows LUKS (`crypto_LUKS`), ext2/ext3/ext4, XFS, FAT (`vfat`) and swap;
//! other contents (LVM, btrfs, …) leave them empty.
//! `WHERE name = '/dev/…'` reads only those devices (and their parents).

use std::{
    collections::BTreeMap,
    io::{Read, Seek, SeekFrom},
    path::{Path, PathBuf},
};

use crate::{
    sql::{
        tables::util::{int, text},
        vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col},
    },
    sys::procfs::read_text,
};

const COLUMNS: &[Column] = &[
    col("name", Text),
    col("parent", Text),
    col("vendor", Text),
    col("model", Text),
    col("serial", Text),
    col("size", BigInt),
    col("block_size", Integer),
    col("uuid", Text),
    col("type", Text),
    col("label", Text),
];
const NAME: usize = 0;

#[derive(Debug)]
pub struct BlockDevices;

/// A device's row, but the superblock's part.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Dev {
    pub name: String,
    pub parent: String,
    pub vendor: String,
    pub model: String,
    pub serial: String,
    pub size: Option<i64>,
    pub block_size: Option<i64>,
}

fn attr(dir: &Path, name: &str) -> String {
    read_text(&dir.join(name))
        .map(|s| s.trim_matches(['\n', '\t', ' ']).to_owned())
        .unwrap_or_default()
}

/// The devices of a `class/block` folder (each entry a link to the device's folder), by
/// name; only `wanted` ones (`/dev/…`) when it is not empty.
pub fn enumerate(class_block: &Path, wanted: &[String]) -> Vec<Dev> {
    let Ok(dir) = std::fs::read_dir(class_block) else {
        return Vec::new();
    };
    // name -> (its folder, parent)
    let mut found: BTreeMap<String, (PathBuf, String)> = BTreeMap::new();
    for e in dir.flatten() {
        let Ok(path) = std::fs::canonicalize(e.path()) else {
            continue;
        };
        if !path.join("uevent").exists() {
            continue;
        }
        let Some(base) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            continue;
        };
        let up = path
            .parent()
            .and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let parent = if up == "block" || up.is_empty() {
            // A whole disk, or a mapping whose parent is the (first) device it is built on.
            let mut slaves: Vec<String> = std::fs::read_dir(path.join("slaves"))
                .map(|d| {
                    d.flatten()
                        .map(|s| s.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            slaves.sort();
            slaves.into_iter().next().unwrap_or_default()
        } else {
            up
        };
        let parent = if parent.is_empty() {
            parent
        } else {
            format!("/dev/{parent}")
        };
        found.insert(format!("/dev/{base}"), (path, parent));
    }
    let own = |path: &Path| {
        let first = |names: &[&str]| {
            names
                .iter()
                .map(|n| attr(path, n))
                .find(|v| !v.is_empty())
                .unwrap_or_default()
        };
        (
            first(&["device/vendor", "device/device/vendor"]),
            attr(path, "device/model"),
            first(&["device/wwid", "device/serial"]),
        )
    };
    found
        .iter()
        .filter(|(name, _)| wanted.is_empty() || wanted.contains(name))
        .map(|(name, (path, parent))| {
            // Partitions and mappings carry their root device's identity.
            let (mut root, mut up) = (path, parent);
            for _ in 0..16 {
                let Some((p, pp)) = found.get(up) else { break };
                (root, up) = (p, pp);
            }
            let (vendor, model, serial) = own(root);
            let num = |n: &str| attr(path, n).parse::<i64>().ok();
            Dev {
                name: name.clone(),
                parent: parent.clone(),
                vendor,
                model,
                serial,
                size: num("size"),
                block_size: num("queue/logical_block_size"),
            }
        })
        .collect()
}

/// Lower-case 8-4-4-4-12 text of 16 bytes.
fn uuid_text(b: &[u8]) -> String {
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    if h.len() != 32 {
        return String::new();
    }
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// Text up to the first NUL.
fn c_text(b: &[u8]) -> String {
    let end = b.iter().position(|x| *x == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

fn le32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// (uuid, type, label) from the first 64 KiB of a device, when its content is one this
/// build knows: LUKS, ext2/3/4, XFS, FAT, swap.
pub fn probe(head: &[u8]) -> Option<(String, String, String)> {
    // LUKS 1 and 2: magic and a big-endian version; the UUID is text at 168, LUKS2 has a
    // label at 24.
    if head.get(..6) == Some(b"LUKS\xba\xbe") && head.len() >= 208 {
        let label = match head[6..8] {
            [0, 2] => c_text(&head[24..72]),
            _ => String::new(),
        };
        return Some((c_text(&head[168..208]), "crypto_LUKS".into(), label));
    }
    // ext2/3/4: the superblock at 1024, magic 0xEF53 at 0x38.
    if let Some(sb) = head.get(1024..2048)
        && sb[0x38..0x3a] == [0x53, 0xef]
    {
        let (compat, incompat, ro) = (le32(sb, 0x5c), le32(sb, 0x60), le32(sb, 0x64));
        // Features beyond ext3's make it ext4; a journal without them, ext3.
        let kind = if incompat & !(0x2 | 0x4 | 0x10) != 0 || ro & !(0x1 | 0x2 | 0x4) != 0 {
            "ext4"
        } else if compat & 0x4 != 0 {
            "ext3"
        } else {
            "ext2"
        };
        return Some((
            uuid_text(&sb[0x68..0x78]),
            kind.into(),
            c_text(&sb[0x78..0x88]),
        ));
    }
    // XFS: "XFSB", uuid at 32, label at 108.
    if head.get(..4) == Some(b"XFSB") && head.len() >= 120 {
        return Some((
            uuid_text(&head[32..48]),
            "xfs".into(),
            c_text(&head[108..120]),
        ));
    }
    // FAT: the boot sector's signature and type string; the volume serial as `XXXX-XXXX`,
    // the boot sector's label (blkid prefers the root folder's, which is the same unless
    // another system relabelled the volume).
    if head.get(510..512) == Some(&[0x55, 0xaa]) {
        let at = if head.get(0x52..0x57) == Some(b"FAT32") {
            Some((0x43, 0x47))
        } else if matches!(head.get(0x36..0x3b), Some(b"FAT12" | b"FAT16")) {
            Some((0x27, 0x2b))
        } else {
            None
        };
        if let Some((serial, label)) = at {
            let id = &head[serial..serial + 4];
            let label = String::from_utf8_lossy(&head[label..label + 11])
                .trim_end()
                .to_owned();
            return Some((
                format!("{:02X}{:02X}-{:02X}{:02X}", id[3], id[2], id[1], id[0]),
                "vfat".into(),
                if label == "NO NAME" {
                    String::new()
                } else {
                    label
                },
            ));
        }
    }
    // Swap: the signature ends the first page (of whatever page size made it).
    for page in [4096usize, 8192, 16384, 65536] {
        if head.get(page - 10..page) == Some(b"SWAPSPACE2") && head.len() >= 1024 + 44 {
            return Some((
                uuid_text(&head[1024 + 12..1024 + 28]),
                "swap".into(),
                c_text(&head[1024 + 28..1024 + 44]),
            ));
        }
    }
    None
}

/// [`probe`] of the file or device at `path`.
pub fn probe_path(path: &Path) -> Option<(String, String, String)> {
    let mut f = std::fs::File::open(path).ok()?;
    f.seek(SeekFrom::Start(0)).ok()?;
    let mut head = Vec::with_capacity(65536);
    f.take(65536).read_to_end(&mut head).ok()?;
    probe(&head)
}

impl Table for BlockDevices {
    fn name(&self) -> &'static str {
        "block_devices"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn generate(&self, ctx: &QueryContext) -> Result<Rows, String> {
        let wanted = ctx.equal_texts(NAME);
        if !ctx.equals(NAME).is_empty() && wanted.is_empty() {
            return Ok(Box::new(std::iter::empty()));
        }
        let rows: Vec<_> = enumerate(Path::new("/sys/class/block"), &wanted)
            .into_iter()
            .map(|d| {
                let (uuid, kind, label) = if d.size.unwrap_or(0) > 0 {
                    probe_path(Path::new(&d.name)).unwrap_or_default()
                } else {
                    Default::default()
                };
                let opt = |v: Option<i64>| v.map_or(rusqlite::types::Value::Null, int);
                Ok(vec![
                    text(d.name),
                    text(d.parent),
                    text(d.vendor),
                    text(d.model),
                    text(d.serial),
                    opt(d.size),
                    opt(d.block_size),
                    text(uuid),
                    text(kind),
                    text(label),
                ])
            })
            .collect();
        Ok(Box::new(rows.into_iter()))
    }

    fn cost(&self, constrained: &[(usize, crate::sql::vtab::Op)]) -> f64 {
        if constrained
            .iter()
            .any(|(c, op)| *c == NAME && *op == crate::sql::vtab::Op::Eq)
        {
            100.0
        } else {
            10_000.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::tables::util::{rows_of, tool};

    #[test]
    fn a_sysfs_tree_gives_parents_and_inherited_identity() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        let disk = r.join("devices/pci0000:00/0000:00:02.0/virtio1/block/vda");
        let part = disk.join("vda1");
        let dm = r.join("devices/virtual/block/dm-0");
        for (d, size) in [(&disk, "2048"), (&part, "1024"), (&dm, "512")] {
            std::fs::create_dir_all(d.join("queue")).unwrap();
            std::fs::write(d.join("uevent"), "").unwrap();
            std::fs::write(d.join("size"), format!("{size}\n")).unwrap();
            std::fs::write(d.join("queue/logical_block_size"), "512\n").unwrap();
        }
        std::fs::create_dir_all(disk.join("device")).unwrap();
        std::fs::write(disk.join("device/vendor"), "0x1af4\n").unwrap();
        std::fs::write(disk.join("device/model"), "  Disk  \n").unwrap();
        std::fs::write(disk.join("device/serial"), "SN1\n").unwrap();
        std::fs::create_dir_all(dm.join("slaves")).unwrap();
        std::os::unix::fs::symlink(&part, dm.join("slaves/vda1")).unwrap();
        let class = r.join("class/block");
        std::fs::create_dir_all(&class).unwrap();
        for (n, d) in [("vda", &disk), ("vda1", &part), ("dm-0", &dm)] {
            std::os::unix::fs::symlink(d, class.join(n)).unwrap();
        }
        // A link to nothing with uevent is skipped.
        std::os::unix::fs::symlink(r.join("gone"), class.join("gone")).unwrap();
        let d = |name: &str, parent: &str, size: i64| Dev {
            name: name.into(),
            parent: parent.into(),
            vendor: "0x1af4".into(),
            model: "Disk".into(),
            serial: "SN1".into(),
            size: Some(size),
            block_size: Some(512),
        };
        assert_eq!(
            enumerate(&class, &[]),
            [
                d("/dev/dm-0", "/dev/vda1", 512),
                d("/dev/vda", "", 2048),
                d("/dev/vda1", "/dev/vda", 1024)
            ]
        );
        assert_eq!(
            enumerate(&class, &["/dev/vda1".into()]),
            [d("/dev/vda1", "/dev/vda", 1024)]
        );
    }

    /// Our superblock reading agrees with libblkid (`blkid -p`) on file systems we make.
    #[test]
    fn superblocks_match_blkid() {
        let t = tempfile::tempdir().unwrap();
        let cases: [(&str, &[&str]); 6] = [
            ("ext4", &["mkfs.ext4", "-q", "-F", "-L", "osprey-l"]),
            (
                "ext2",
                &[
                    "mkfs.ext4",
                    "-q",
                    "-F",
                    "-O",
                    "^has_journal,^extent,^flex_bg,^64bit,^metadata_csum,^huge_file,^dir_nlink,^extra_isize",
                    "-t",
                    "ext2",
                ],
            ),
            ("swap", &["mkswap", "-L", "sw"]),
            ("xfs", &["mkfs.xfs", "-q", "-f", "-L", "xlab"]),
            ("vfat", &["mkfs.vfat", "-F", "32", "-n", "MYESP"]),
            ("vfat", &["mkfs.vfat", "-F", "16"]),
        ];
        for (i, (kind, cmd)) in cases.into_iter().enumerate() {
            let img = t.path().join(format!("{i}.img"));
            // Sparse; XFS wants 300 MiB at least.
            std::fs::File::create(&img)
                .unwrap()
                .set_len(if kind == "xfs" { 320 << 20 } else { 64 << 20 })
                .unwrap();
            let mut args: Vec<&str> = cmd[1..].to_vec();
            let p = img.to_str().unwrap();
            args.push(p);
            tool(cmd[0], &args);
            check(&img, kind);
        }
        // LUKS headers (no cryptsetup here): magic, version, UUID text, a LUKS2 label.
        for version in [1u8, 2] {
            let mut h = vec![0u8; 1 << 20];
            h[..6].copy_from_slice(b"LUKS\xba\xbe");
            h[7] = version;
            h[8..11].copy_from_slice(b"aes");
            if version == 2 {
                h[8..16].copy_from_slice(&16384u64.to_be_bytes());
                h[24..29].copy_from_slice(b"vault");
            }
            let u = b"0f3a7f6e-2b1c-4d5e-9f00-112233445566";
            h[168..168 + u.len()].copy_from_slice(u);
            let img = t.path().join(format!("luks{version}.img"));
            std::fs::write(&img, &h).unwrap();
            check(&img, "crypto_LUKS");
        }
        assert_eq!(probe(&[0u8; 70000]), None);
        assert_eq!(probe(&[]), None);
    }

    /// [`probe_path`] of `img` equals what `blkid -p` says, and its type is `kind`.
    fn check(img: &Path, kind: &str) {
        let p = img.to_str().unwrap();
        let out = tool("blkid", &["-p", "-o", "export", p]);
        let field = |k: &str| {
            out.lines()
                .find_map(|l| l.strip_prefix(k)?.strip_prefix('='))
                .unwrap_or("")
                .to_owned()
        };
        assert_eq!(
            probe_path(img),
            Some((field("UUID"), field("TYPE"), field("LABEL"))),
            "{kind}: {out}"
        );
        assert_eq!(field("TYPE"), kind);
    }

    /// Every device lsblk lists, with its parent, size and logical block size.
    #[test]
    fn this_host_agrees_with_lsblk() {
        let mut want: Vec<Vec<String>> = tool(
            "lsblk",
            &["-a", "-l", "-n", "-b", "-o", "KNAME,PKNAME,SIZE,LOG-SEC"],
        )
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (name, parent, size, sec) = match f.len() {
                4 => (f[0], format!("/dev/{}", f[1]), f[2], f[3]),
                _ => (f[0], String::new(), f[1], f[2]),
            };
            let sectors = size.parse::<u64>().unwrap() / 512;
            vec![
                format!("/dev/{name}"),
                parent,
                sectors.to_string(),
                sec.to_owned(),
            ]
        })
        .collect();
        want.sort();
        want.dedup();
        let got = rows_of("SELECT name, parent, size, block_size FROM block_devices ORDER BY name");
        assert_eq!(got, want);
        let one = &want[0][0];
        assert_eq!(
            rows_of(&format!(
                "SELECT name FROM block_devices WHERE name = '{one}'"
            )),
            [vec![one.clone()]]
        );
    }
}
