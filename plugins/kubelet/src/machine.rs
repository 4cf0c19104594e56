//! Facts about the machine: CPU count, memory, hostname, an address.

/// CPUs available to this process.
pub fn cpu_count() -> u32 {
    std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1)
}

/// `MemTotal` of /proc/meminfo in bytes.
pub fn memory_bytes() -> i64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| parse_meminfo_total(&text))
        .unwrap_or(0)
}

/// `MemTotal:  16310508 kB` → bytes.
pub fn parse_meminfo_total(text: &str) -> Option<i64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: i64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The host's name.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "localhost".to_owned())
}

/// A non-loopback IPv4 address of this machine (from /proc/net/fib_trie's
/// local host routes), or 127.0.0.1 when there is none.
pub fn node_ip() -> String {
    std::fs::read_to_string("/proc/net/fib_trie")
        .ok()
        .and_then(|t| local_address(&t))
        .unwrap_or_else(|| "127.0.0.1".to_owned())
}

/// The first `/32 host LOCAL` address that is not loopback.
pub fn local_address(fib_trie: &str) -> Option<String> {
    let mut last_leaf: Option<&str> = None;
    for line in fib_trie.lines() {
        let t = line.trim_start();
        if let Some(rest) = t.strip_prefix("|-- ") {
            last_leaf = Some(rest.trim());
        } else if t.starts_with("/32 host LOCAL")
            && let Some(ip) = last_leaf
            && !ip.starts_with("127.")
        {
            return Some(ip.to_owned());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_meminfo_and_fib_trie() {
        assert_eq!(
            parse_meminfo_total("MemTotal:       2048 kB\nMemFree: 1 kB"),
            Some(2048 * 1024)
        );
        let trie = "Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 127.0.0.1\n        /32 host LOCAL\n     |-- 10.1.2.3\n        /32 host LOCAL\n";
        assert_eq!(local_address(trie).as_deref(), Some("10.1.2.3"));
        assert!(cpu_count() >= 1);
    }
}
