//! `/proc/meminfo`: total memory in bytes.

/// `MemTotal` in bytes, if present.
pub fn parse_meminfo_total(text: &str) -> Option<i64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix("MemTotal:")?;
        let kib: i64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
        kib.checked_mul(1024)
    })
}

/// This machine's total memory in bytes.
pub fn read_local_total() -> std::io::Result<i64> {
    let text = std::fs::read_to_string("/proc/meminfo")?;
    parse_meminfo_total(&text).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "no MemTotal in /proc/meminfo",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kib() {
        assert_eq!(
            parse_meminfo_total("MemTotal:       24684084 kB\nMemFree: 1 kB\n"),
            Some(24684084 * 1024)
        );
        assert_eq!(parse_meminfo_total("MemFree: 1 kB\n"), None);
    }
}
