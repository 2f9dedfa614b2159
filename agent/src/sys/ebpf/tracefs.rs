//! Tracepoint record layouts from tracefs `format` files, so no field offset is compiled in.

use std::{collections::HashMap, path::PathBuf};

/// Where tracefs is mounted; debugfs's copy is the fallback on older systems.
pub fn tracefs_root() -> Option<PathBuf> {
    ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.join("events").is_dir())
}

/// Field name -> byte offset, parsed from the text of a `format` file.
pub fn parse_format(text: &str) -> HashMap<String, u32> {
    let mut out = HashMap::new();
    for line in text.lines() {
        let line = line.trim();
        let Some(rest) = line.strip_prefix("field:") else {
            continue;
        };
        let mut parts = rest.split(';');
        let decl = parts.next().unwrap_or("").trim();
        let offset = parts
            .find_map(|p| p.trim().strip_prefix("offset:"))
            .and_then(|o| o.trim().parse::<u32>().ok());
        // The name is the last word of the declaration, without any array suffix.
        let name = decl
            .split_whitespace()
            .last()
            .map(|n| n.split('[').next().unwrap_or(n).to_owned());
        if let (Some(name), Some(offset)) = (name, offset) {
            out.insert(name, offset);
        }
    }
    out
}

/// Mounts tracefs at /sys/kernel/tracing when nothing provides it yet (a minimal system or
/// container may not mount it).
pub fn ensure_mounted() -> std::io::Result<()> {
    if tracefs_root().is_some() {
        return Ok(());
    }
    rustix::mount::mount(
        "nodev",
        "/sys/kernel/tracing",
        "tracefs",
        rustix::mount::MountFlags::empty(),
        None,
    )
    .map_err(|e| std::io::Error::other(format!("mounting tracefs at /sys/kernel/tracing: {e}")))?;
    log::info!("mounted tracefs at /sys/kernel/tracing");
    Ok(())
}

/// Offsets of the fields of `category/name`, read from the running kernel.
pub fn field_offsets(category: &str, name: &str) -> std::io::Result<HashMap<String, u32>> {
    let root = tracefs_root().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "tracefs is not mounted at /sys/kernel/tracing",
        )
    })?;
    let text =
        std::fs::read_to_string(root.join("events").join(category).join(name).join("format"))?;
    Ok(parse_format(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sched_process_exec_format() {
        let text = "name: sched_process_exec\nID: 313\nformat:\n\
            \tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
            \tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n\
            \tfield:__data_loc char[] filename;\toffset:8;\tsize:4;\tsigned:0;\n\
            \tfield:pid_t pid;\toffset:12;\tsize:4;\tsigned:1;\n\
            \tfield:char comm[16];\toffset:16;\tsize:16;\tsigned:0;\n";
        let f = parse_format(text);
        assert_eq!(f.get("filename"), Some(&8));
        assert_eq!(f.get("pid"), Some(&12));
        assert_eq!(f.get("common_pid"), Some(&4));
        assert_eq!(f.get("comm"), Some(&16));
    }
}
