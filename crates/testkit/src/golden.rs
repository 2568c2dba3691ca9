//! Golden bytes: what a contract puts on the wire, pinned in `schemas/golden/` as hex.
//!
//! [`check`] compares bytes with the pinned file and fails on any difference, or when the file
//! is missing. The files are written only on purpose: `RIVULET_BLESS_GOLDEN=1` (re)writes them,
//! which a change of the wire format needs, and a review of the diff should question.

use std::path::PathBuf;

/// Where the pinned files live.
pub fn dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas/golden"))
}

/// The bytes as hex, 32 bytes a line.
pub fn to_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2 + bytes.len() / 32 + 1);
    for line in bytes.chunks(32) {
        for b in line {
            out.push_str(&format!("{b:02x}"));
        }
        out.push('\n');
    }
    out
}

/// Checks `bytes` against `schemas/golden/<name>` (`name` includes the extension, e.g.
/// `raw-data-in/v1.hex`). With `RIVULET_BLESS_GOLDEN=1` the file is written instead.
pub fn check(name: &str, bytes: &[u8]) {
    check_text(name, &to_hex(bytes));
}

/// [`check`] for text (JSON documents, keys).
pub fn check_text(name: &str, text: &str) {
    let path = dir().join(name);
    if std::env::var_os("RIVULET_BLESS_GOLDEN").is_some_and(|v| v == "1") {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{parent:?}: {e}"));
        }
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        return;
    }
    let pinned = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("golden file {path:?} is missing ({e}); RIVULET_BLESS_GOLDEN=1 writes it")
    });
    assert!(
        pinned == text,
        "{name}: the wire format changed\n--- pinned\n{pinned}\n--- now\n{text}"
    );
}

/// The pinned bytes of `schemas/golden/<name>` (a hex file), for checks that cannot compare
/// bytes directly (Avro maps are written in hash order, so only their decoded value is stable).
/// With `RIVULET_BLESS_GOLDEN=1`, `bytes` are written and returned.
pub fn pinned(name: &str, bytes: &[u8]) -> Vec<u8> {
    let path = dir().join(name);
    if std::env::var_os("RIVULET_BLESS_GOLDEN").is_some_and(|v| v == "1") {
        check(name, bytes);
        return bytes.to_vec();
    }
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("golden file {path:?} is missing ({e}); RIVULET_BLESS_GOLDEN=1 writes it")
    });
    from_hex(&text).unwrap_or_else(|| panic!("{path:?} is not hex"))
}

/// Bytes from [`to_hex`]'s text (whitespace ignored).
pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_lines_hold_32_bytes() {
        let bytes: Vec<u8> = (0..40).collect();
        let hex = to_hex(&bytes);
        let lines: Vec<&str> = hex.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].len(), 64);
        assert_eq!(lines[1], "2021222324252627");
        assert_eq!(from_hex(&hex), Some(bytes));
        assert_eq!(from_hex("0g"), None);
    }
}
