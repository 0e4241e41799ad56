//! `qossim::run::release_freed_heap`: heap a finished run freed goes back to
//! the system before the charts are drawn (mqttsn-10k's peak RSS was the
//! freed world plus the charts' bitmaps; BENCHMARKS.md).

/// This process's resident anonymous memory, KB (`/proc/self/status`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn rss_anon_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("RssAnon:"))
        .expect("RssAnon in /proc/self/status");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn freed_small_blocks_leave_the_resident_set() {
    // 40 MB in 64-byte blocks (as a world's records are), then one block
    // above them that stays live: glibc keeps the freed pages below it
    let mut blocks: Vec<Box<[u8; 64]>> = (0..640_000).map(|_| Box::new([1u8; 64])).collect();
    let keep = Box::new([2u8; 64]);
    let before_free = rss_anon_kb();
    for b in blocks.iter_mut() {
        b[0] = 3; // touched: resident
    }
    drop(blocks);
    let freed = rss_anon_kb();
    qossim::run::release_freed_heap();
    let released = rss_anon_kb();
    assert_eq!(keep[0], 2);
    eprintln!("RssAnon: {before_free} KB live, {freed} KB after free, {released} KB after release");
    assert!(
        freed > released + 20_000,
        "release_freed_heap gave back {} KB of ~40,000 freed",
        freed.saturating_sub(released)
    );
}
