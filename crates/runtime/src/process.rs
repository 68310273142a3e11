//! The `process_*` metrics every Prometheus client exports by convention
//! (CPU, memory, file descriptors, threads, start time), read from `/proc`
//! every few seconds. Linux only; elsewhere they stay at zero.

use metrics::{describe_counter, describe_gauge, Unit};

/// CPU time used, user and system.
pub const CPU_SECONDS: &str = "process_cpu_seconds_total";
/// Resident memory.
pub const RESIDENT_BYTES: &str = "process_resident_memory_bytes";
/// Virtual memory.
pub const VIRTUAL_BYTES: &str = "process_virtual_memory_bytes";
/// Open file descriptors.
pub const OPEN_FDS: &str = "process_open_fds";
/// Threads.
pub const THREADS: &str = "process_threads";
/// Start time, Unix seconds.
pub const START_TIME: &str = "process_start_time_seconds";

/// Registers the descriptions and takes a first sample.
pub fn describe() {
    describe_counter!(
        CPU_SECONDS,
        Unit::Seconds,
        "Total user and system CPU time spent"
    );
    describe_gauge!(RESIDENT_BYTES, Unit::Bytes, "Resident memory size");
    describe_gauge!(VIRTUAL_BYTES, Unit::Bytes, "Virtual memory size");
    describe_gauge!(OPEN_FDS, "Open file descriptors");
    describe_gauge!(THREADS, "Operating-system threads");
    describe_gauge!(
        START_TIME,
        Unit::Seconds,
        "Start time of the process since the Unix epoch"
    );
    sample();
}

/// Reads `/proc/self` into the metrics.
pub fn sample() {
    #[cfg(target_os = "linux")]
    if let Some(s) = read() {
        metrics::counter!(CPU_SECONDS).absolute(s.cpu_seconds as u64);
        metrics::gauge!(RESIDENT_BYTES).set(s.resident_bytes as f64);
        metrics::gauge!(VIRTUAL_BYTES).set(s.virtual_bytes as f64);
        metrics::gauge!(OPEN_FDS).set(s.open_fds as f64);
        metrics::gauge!(THREADS).set(s.threads as f64);
        metrics::gauge!(START_TIME).set(s.start_time);
    }
}

/// One reading of `/proc/self`.
#[derive(Debug, Default, PartialEq)]
struct Sample {
    cpu_seconds: f64,
    resident_bytes: u64,
    virtual_bytes: u64,
    open_fds: usize,
    threads: u64,
    start_time: f64,
}

#[cfg(target_os = "linux")]
fn read() -> Option<Sample> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let boot = std::fs::read_to_string("/proc/stat").ok()?;
    // SAFETY: sysconf only reads a constant of the running system.
    #[allow(unsafe_code)]
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let open_fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count());
    parse(&stat, &status, &boot, ticks, open_fds)
}

/// Parses `/proc/self/stat`, `/proc/self/status` and `/proc/stat`.
fn parse(stat: &str, status: &str, boot: &str, ticks: f64, open_fds: usize) -> Option<Sample> {
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // With `state` as field 3: utime 14, stime 15, starttime 22.
    let field = |n: usize| f.get(n - 3)?.parse::<f64>().ok();
    let kib = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))?
            .split_whitespace()
            .nth(1)?
            .parse::<u64>()
            .ok()
    };
    let btime: f64 = boot
        .lines()
        .find(|l| l.starts_with("btime "))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(Sample {
        cpu_seconds: (field(14)? + field(15)?) / ticks,
        resident_bytes: kib("VmRSS:")? * 1024,
        virtual_bytes: kib("VmSize:")? * 1024,
        open_fds,
        threads: kib("Threads:")?,
        start_time: btime + field(22)? / ticks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files_parse() {
        let stat = "4242 (crawlq (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 1000 123456 789 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0";
        let status = "Name:\tcrawlq\nVmSize:\t  123456 kB\nVmRSS:\t   2048 kB\nThreads:\t9\n";
        let boot = "cpu  1 2 3\nbtime 1700000000\n";
        let s = parse(stat, status, boot, 100.0, 12).unwrap();
        assert_eq!(s.cpu_seconds, 3.0);
        assert_eq!(s.resident_bytes, 2048 * 1024);
        assert_eq!(s.virtual_bytes, 123_456 * 1024);
        assert_eq!(s.threads, 9);
        assert_eq!(s.open_fds, 12);
        assert_eq!(s.start_time, 1_700_000_010.0);
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn this_process_reads() {
        let s = read().unwrap();
        assert!(
            s.resident_bytes > 0 && s.threads >= 1 && s.start_time > 1e9,
            "{s:?}"
        );
    }
}
