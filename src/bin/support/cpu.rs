//! Where the CPU went during a load phase: the server processes', the load generator's and the
//! machine's idle share, read from `/proc` (Linux; elsewhere the figures are simply absent).
//! CPU time per request is steadier than requests per second on a noisy machine, and it tells
//! whether a route is bound by the CPU or by waiting.

/// `/proc` counts CPU time in USER_HZ ticks, 100 per second on every Linux ABI.
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU counters at one moment.
pub struct CpuMark {
    server: Option<u64>,
    generator: Option<u64>,
    /// (idle + iowait, all) ticks of the whole machine.
    machine: Option<(u64, u64)>,
}

/// CPU use over a phase.
pub struct CpuUse {
    /// Server CPU time per request, all instances and threads, in microseconds.
    pub server_us: f64,
    /// The load generator's (this process's) CPU time per request, in microseconds.
    pub generator_us: f64,
    /// Share of the machine's CPU time left idle (waiting on the disk included).
    pub idle: f64,
}

/// Reads the counters of `servers` (process ids), this process and the machine.
pub fn mark(servers: &[u32]) -> CpuMark {
    let server = servers
        .iter()
        .map(|pid| process_ticks(&pid.to_string()))
        .sum::<Option<u64>>();
    CpuMark {
        server,
        generator: process_ticks("self"),
        machine: machine_ticks(),
    }
}

/// The use between `start` and `end` for `requests` answered requests.
pub fn between(start: &CpuMark, end: &CpuMark, requests: usize) -> Option<CpuUse> {
    let per_request =
        |a: u64, b: u64| (b - a) as f64 / TICKS_PER_SECOND * 1e6 / requests.max(1) as f64;
    let ((idle0, all0), (idle1, all1)) = (start.machine?, end.machine?);
    Some(CpuUse {
        server_us: per_request(start.server?, end.server?),
        generator_us: per_request(start.generator?, end.generator?),
        idle: (idle1 - idle0) as f64 / (all1 - all0).max(1) as f64,
    })
}

/// utime + stime of a process (`self` or a pid), in ticks.
fn process_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses; the fields follow its last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // Field 3 (state) is fields[0]; utime and stime are fields 14 and 15.
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

fn machine_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu = stat.lines().next()?.strip_prefix("cpu ")?;
    let ticks: Vec<u64> = cpu
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let all = ticks.iter().take(8).sum();
    Some((ticks.get(3)? + ticks.get(4)?, all))
}
