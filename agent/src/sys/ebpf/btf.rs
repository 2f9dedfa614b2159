//! A small reader for the kernel's BTF (`/sys/kernel/btf/vmlinux`): just enough to find a
//! struct member's byte offset, through anonymous structs and unions, by name.
//!
//! Format: a header, a type section of `btf_type` records (each followed by kind-specific
//! data), and a string section. Type ids start at 1.

use std::collections::HashMap;

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum BtfError {
    #[error("BTF data is truncated or malformed at byte {0}")]
    Malformed(usize),
    #[error("not BTF (magic {0:#06x})")]
    BadMagic(u16),
    #[error("unknown BTF kind {kind} at type {id}")]
    UnknownKind { kind: u32, id: u32 },
}

const KIND_INT: u32 = 1;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_DECL_TAG: u32 = 17;
const KIND_ENUM64: u32 = 19;

/// One `btf_type` record: where its members are, nothing copied (a kernel's BTF has over
/// 100,000 types, and the agent needs about 40 members of them: names are compared in place).
#[derive(Debug, Clone, Copy)]
struct Type {
    kind: u32,
    /// For typedefs and qualifiers: the type they refer to.
    ref_type: u32,
    /// Byte position of the first member record in the type section (structs, unions).
    members_at: u32,
    vlen: u16,
    kind_flag: bool,
}

#[derive(Debug)]
pub struct Btf {
    data: Vec<u8>,
    types_start: usize,
    types_len: usize,
    strs_start: usize,
    strs_len: usize,
    types: Vec<Type>,
    structs_by_name: HashMap<Box<[u8]>, u32>,
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, BtfError> {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map(u32::from_le_bytes)
        .ok_or(BtfError::Malformed(at))
}

impl Btf {
    pub fn parse(data: &[u8]) -> Result<Self, BtfError> {
        Self::from_vec(data.to_vec())
    }

    fn from_vec(data: Vec<u8>) -> Result<Self, BtfError> {
        let magic = data
            .get(0..2)
            .map(|m| u16::from_le_bytes([m[0], m[1]]))
            .ok_or(BtfError::Malformed(0))?;
        if magic != 0xeb9f {
            return Err(BtfError::BadMagic(magic));
        }
        let hdr_len = u32_at(&data, 4)? as usize;
        let type_off = u32_at(&data, 8)? as usize;
        let types_len = u32_at(&data, 12)? as usize;
        let str_off = u32_at(&data, 16)? as usize;
        let strs_len = u32_at(&data, 20)? as usize;
        let types_start = hdr_len + type_off;
        data.get(types_start..types_start + types_len)
            .ok_or(BtfError::Malformed(types_start))?;
        let strs_start = hdr_len + str_off;
        data.get(strs_start..strs_start + strs_len)
            .ok_or(BtfError::Malformed(strs_start))?;
        let mut btf = Self {
            data,
            types_start,
            types_len,
            strs_start,
            strs_len,
            types: Vec::new(),
            structs_by_name: HashMap::new(),
        };
        btf.index()?;
        Ok(btf)
    }

    fn type_section(&self) -> &[u8] {
        &self.data[self.types_start..self.types_start + self.types_len]
    }

    /// The NUL-terminated name at `off` in the string section (empty when out of range).
    fn name(&self, off: u32) -> &[u8] {
        let strs = &self.data[self.strs_start..self.strs_start + self.strs_len];
        strs.get(off as usize..)
            .and_then(|s| s.split(|b| *b == 0).next())
            .unwrap_or_default()
    }

    fn index(&mut self) -> Result<(), BtfError> {
        // Type id 0 is "void".
        let mut out = vec![Type {
            kind: 0,
            ref_type: 0,
            members_at: 0,
            vlen: 0,
            kind_flag: false,
        }];
        let types = self.type_section();
        let mut structs = Vec::new();
        let mut pos = 0usize;
        while pos < types.len() {
            let name_off = u32_at(types, pos)?;
            let info = u32_at(types, pos + 4)?;
            let size_or_type = u32_at(types, pos + 8)?;
            pos += 12;
            let kind = (info >> 24) & 0x1f;
            let vlen = (info & 0xffff) as usize;
            let members_at = pos;
            match kind {
                KIND_INT | KIND_VAR | KIND_DECL_TAG => pos += 4,
                KIND_ARRAY => pos += 12,
                KIND_STRUCT | KIND_UNION => {
                    pos += vlen * 12;
                    if vlen > 0 {
                        // The last member record must be inside the section.
                        u32_at(types, pos - 4)?;
                    }
                }
                KIND_ENUM | KIND_FUNC_PROTO => pos += vlen * 8,
                KIND_DATASEC | KIND_ENUM64 => pos += vlen * 12,
                2 | 7..=12 | 16 | 18 => {}
                _ => {
                    return Err(BtfError::UnknownKind {
                        kind,
                        id: out.len() as u32,
                    });
                }
            }
            if kind == KIND_STRUCT && name_off != 0 {
                structs.push((name_off, out.len() as u32));
            }
            out.push(Type {
                kind,
                ref_type: size_or_type,
                members_at: members_at as u32,
                vlen: vlen as u16,
                kind_flag: info >> 31 == 1,
            });
        }
        if pos != types.len() {
            return Err(BtfError::Malformed(self.types_start + pos));
        }
        let mut by_name = HashMap::with_capacity(structs.len());
        for (off, id) in structs {
            let name = self.name(off);
            if !name.is_empty() {
                // The first definition wins; later ones are duplicates from modules.
                by_name.entry(name.into()).or_insert(id);
            }
        }
        self.types = out;
        self.structs_by_name = by_name;
        Ok(())
    }

    pub fn from_sys_fs() -> std::io::Result<Result<Self, BtfError>> {
        Ok(Self::from_vec(std::fs::read("/sys/kernel/btf/vmlinux")?))
    }

    fn struct_id(&self, name: &str) -> Option<u32> {
        self.structs_by_name.get(name.as_bytes()).copied()
    }

    /// Byte offset of `member` inside `struct strukt`, looking through anonymous members.
    pub fn member_offset(&self, strukt: &str, member: &str) -> Option<u32> {
        let id = self.struct_id(strukt)?;
        self.find_member(id, member).map(|(bits, _)| bits / 8)
    }

    /// Byte offset of a dotted path such as `ns.inum` inside `struct strukt`, following
    /// embedded (not pointed-to) struct members.
    pub fn path_offset(&self, strukt: &str, path: &str) -> Option<u32> {
        let mut id = self.struct_id(strukt)?;
        let mut bits = 0;
        for (i, part) in path.split('.').enumerate() {
            if i > 0 {
                id = self.resolve(id)?;
            }
            let (member_bits, member_type) = self.find_member(id, part)?;
            bits += member_bits;
            id = member_type;
        }
        Some(bits / 8)
    }

    /// The members of type `t`: (name, type id, bit offset).
    fn members(&self, t: Type) -> impl Iterator<Item = (&[u8], u32, u32)> {
        let types = self.type_section();
        (0..usize::from(t.vlen)).filter_map(move |i| {
            let at = t.members_at as usize + i * 12;
            let offset = u32_at(types, at + 8).ok()?;
            Some((
                self.name(u32_at(types, at).ok()?),
                u32_at(types, at + 4).ok()?,
                if t.kind_flag {
                    offset & 0xff_ffff
                } else {
                    offset
                },
            ))
        })
    }

    /// (bit offset, type id) of a member, searching anonymous struct/union members.
    fn find_member(&self, id: u32, member: &str) -> Option<(u32, u32)> {
        let t = *self.types.get(id as usize)?;
        if !matches!(t.kind, KIND_STRUCT | KIND_UNION) {
            return None;
        }
        if let Some((_, ty, bits)) = self.members(t).find(|(n, _, _)| *n == member.as_bytes()) {
            return Some((bits, ty));
        }
        for (_, ty, bits) in self.members(t).filter(|(n, _, _)| n.is_empty()) {
            let inner = self.resolve(ty)?;
            if let Some((b, ty)) = self.find_member(inner, member) {
                return Some((bits + b, ty));
            }
        }
        None
    }

    /// Follows typedefs and qualifiers to a struct or union.
    fn resolve(&self, mut id: u32) -> Option<u32> {
        for _ in 0..32 {
            let t = self.types.get(id as usize)?;
            match t.kind {
                KIND_STRUCT | KIND_UNION => return Some(id),
                // typedef, volatile, const, restrict, type_tag: follow the referenced type.
                8..=11 | 18 => id = t.ref_type,
                _ => return None,
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a tiny BTF blob: struct outer { int a; union { int b; struct { int c; } ; }; }.
    fn blob() -> Vec<u8> {
        let strings = b"\0int\0outer\0a\0b\0c\0".to_vec();
        let s = |name: &str| -> u32 {
            let pos = strings
                .windows(name.len() + 1)
                .position(|w| &w[..name.len()] == name.as_bytes() && w[name.len()] == 0)
                .unwrap();
            pos as u32
        };
        let mut t = Vec::new();
        let mut push = |vals: &[u32]| {
            vals.iter()
                .for_each(|v| t.extend_from_slice(&v.to_le_bytes()))
        };
        // 1: int
        push(&[s("int"), KIND_INT << 24, 4, 32]);
        // 2: anonymous struct { int c; } (c at bit 0)
        push(&[0, (KIND_STRUCT << 24) | 1, 4, s("c"), 1, 0]);
        // 3: anonymous union { int b; struct{c}; }
        push(&[0, (KIND_UNION << 24) | 2, 4, s("b"), 1, 0, 0, 2, 0]);
        // 4: struct outer { int a @0; union @64 }
        push(&[
            s("outer"),
            (KIND_STRUCT << 24) | 2,
            16,
            s("a"),
            1,
            0,
            0,
            3,
            64,
        ]);
        let mut out = Vec::new();
        out.extend_from_slice(&0xeb9fu16.to_le_bytes());
        out.push(1);
        out.push(0);
        for v in [
            24u32,
            0,
            t.len() as u32,
            t.len() as u32,
            strings.len() as u32,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&t);
        out.extend_from_slice(&strings);
        out
    }

    #[test]
    fn finds_members_through_anonymous_unions() {
        let btf = Btf::parse(&blob()).unwrap();
        assert_eq!(btf.member_offset("outer", "a"), Some(0));
        assert_eq!(btf.member_offset("outer", "b"), Some(8));
        assert_eq!(btf.member_offset("outer", "c"), Some(8));
        assert_eq!(btf.member_offset("outer", "zz"), None);
        assert_eq!(btf.member_offset("nope", "a"), None);
    }

    #[test]
    fn malformed_input_is_an_error() {
        let b = blob();
        for cut in [0, 1, 5, 23, 30, b.len() - 1] {
            assert!(Btf::parse(&b[..cut]).is_err(), "cut {cut}");
        }
        assert_eq!(
            Btf::parse(&[0, 0, 0, 0]).unwrap_err(),
            BtfError::BadMagic(0)
        );
    }
}
