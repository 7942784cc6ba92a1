//! `hearth-pi`: the example application for hearth, a Monte-Carlo estimate of pi split into
//! tasks that a driver hands out to executors over a tiny line protocol (std only).
//!
//! Protocol (ASCII, one `\n`-terminated line per message):
//! executor -> driver: `GET` | `RESULT <id> <inside>`;
//! driver -> executor: `TASK <id> <seed> <samples>` | `WAIT` | `DONE`.
//! Tasks handed to a connection are in flight on it; when it drops they go back to the queue.

use std::collections::{HashMap, VecDeque};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use std::{env, process, thread};

const DEFAULT_TASKS: u64 = 200;
const DEFAULT_SAMPLES: u64 = 200_000;
const MAX_TASKS: u64 = 1 << 24;
const MAX_LINE: u64 = 128;

const USAGE: &str =
    "usage: hearth-pi <driver|executor|expected> [FLAGS]   (hearth-pi <role> --help)
Monte-Carlo pi, the example application for hearth.
  driver    serve N tasks to executors over TCP, print the merged estimate
  executor  connect to a driver and compute tasks until it says DONE
  expected  compute the same result line locally, without network
";
const DRIVER_HELP: &str =
    "usage: hearth-pi driver [--tasks N] [--samples-per-task M] [--port P] [--exit-code C]
Listens on 0.0.0.0:P and hands out N tasks of M samples each to executors. When all N results
are in it prints one line `pi=<12 decimals> inside=<I> samples=<N*M> tasks=<N>` on stdout and
exits. Tasks in flight on a connection that drops are re-queued. Progress is logged on stderr.
  --tasks N             number of tasks (default 200)
  --samples-per-task M  samples per task (default 200000)
  --port P              TCP port (default: env HEARTH_DRIVER_PORT; one of the two is required)
  --exit-code C         exit with code C (0-255) after printing the result (default 0)
";
const EXECUTOR_HELP: &str = "usage: hearth-pi executor [--driver HOST:PORT]
Connects to the driver (retrying for up to 30 s), then loops GET / compute / RESULT; on WAIT it
sleeps 50 ms and asks again; on DONE, or when the driver closes the connection, it exits 0.
  --driver HOST:PORT  the driver (default: env HEARTH_DRIVER_URL)
Env: HEARTH_PI_TASK_DELAY_MS  extra sleep per task, in milliseconds (for tests)
     HEARTH_EXECUTOR_ID, HEARTH_APP_ID  shown in the log lines when set
";
const EXPECTED_HELP: &str = "usage: hearth-pi expected [--tasks N] [--samples-per-task M]
Prints the line the driver would print for the same N and M (same defaults), computed locally.
";

// ---------------------------------------------------------------- computation

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, deterministic, good enough for Monte-Carlo.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.0)
    }
    /// Uniform in [0, 1) from the top 53 bits.
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn task_seed(id: u64) -> u64 {
    mix64(id ^ 0x6865_6172_7468_2d70) // "hearth-p"
}

fn count_inside(seed: u64, samples: u64) -> u64 {
    let mut rng = SplitMix64(seed);
    let mut inside = 0;
    for _ in 0..samples {
        let (x, y) = (rng.next_f64(), rng.next_f64());
        if x * x + y * y < 1.0 {
            inside += 1;
        }
    }
    inside
}

/// Callers guarantee `tasks * samples_per_task` fits in a u64 and is not zero.
fn result_line(inside: u64, tasks: u64, samples_per_task: u64) -> String {
    let samples = tasks * samples_per_task;
    let pi = 4.0 * inside as f64 / samples as f64;
    format!("pi={pi:.12} inside={inside} samples={samples} tasks={tasks}")
}

fn expected_line(tasks: u64, samples_per_task: u64) -> String {
    let inside = (0..tasks)
        .map(|id| count_inside(task_seed(id), samples_per_task))
        .sum();
    result_line(inside, tasks, samples_per_task)
}

// ---------------------------------------------------------------- protocol

/// One protocol message; `Get` and `Result` go to the driver, the others to an executor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Msg {
    Get,
    Result { id: u64, inside: u64 },
    Task { id: u64, seed: u64, samples: u64 },
    Wait,
    Done,
}

fn num(tok: &str) -> Result<u64, String> {
    if tok.is_empty() || !tok.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("bad number {tok:?}"));
    }
    tok.parse()
        .map_err(|_| format!("number out of range {tok:?}"))
}

impl Msg {
    fn parse(line: &str) -> Result<Msg, String> {
        match line.split(' ').collect::<Vec<_>>().as_slice() {
            ["GET"] => Ok(Msg::Get),
            ["WAIT"] => Ok(Msg::Wait),
            ["DONE"] => Ok(Msg::Done),
            ["RESULT", id, inside] => Ok(Msg::Result {
                id: num(id)?,
                inside: num(inside)?,
            }),
            ["TASK", id, seed, n] => Ok(Msg::Task {
                id: num(id)?,
                seed: num(seed)?,
                samples: num(n)?,
            }),
            _ => Err(format!("malformed line {line:?}")),
        }
    }

    fn to_line(self) -> String {
        match self {
            Msg::Get => "GET\n".to_string(),
            Msg::Wait => "WAIT\n".to_string(),
            Msg::Done => "DONE\n".to_string(),
            Msg::Result { id, inside } => format!("RESULT {id} {inside}\n"),
            Msg::Task { id, seed, samples } => format!("TASK {id} {seed} {samples}\n"),
        }
    }
}

/// One line without its `\n` (or `\r\n`); `Ok(None)` on EOF at a line boundary. Over-long or
/// non-UTF-8 lines are `InvalidData`; EOF in the middle of a line is `UnexpectedEof`.
fn read_line(r: &mut impl BufRead) -> io::Result<Option<String>> {
    let mut buf = Vec::new();
    let n = r.by_ref().take(MAX_LINE).read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.pop() != Some(b'\n') {
        return Err(if n as u64 >= MAX_LINE {
            io::Error::new(io::ErrorKind::InvalidData, "line too long")
        } else {
            io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed mid-line")
        });
    }
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    String::from_utf8(buf)
        .map(Some)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "line is not UTF-8"))
}

// ---------------------------------------------------------------- driver

#[derive(Default)]
struct State {
    queue: VecDeque<u64>,
    results: Vec<Option<u64>>,
    recorded: u64,
    inside_total: u64,
    in_flight: HashMap<u64, Vec<u64>>, // connection number -> task ids
    next_conn: u64,
    active: usize,
    requeued: u64,
}

struct Shared {
    tasks: u64,
    samples: u64,
    state: Mutex<State>,
    changed: Condvar,
}

macro_rules! dlog {
    ($($arg:tt)*) => { eprintln!("hearth-pi driver: {}", format_args!($($arg)*)) };
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn next_reply(&self, conn: u64) -> Msg {
        let mut guard = self.lock();
        let st = &mut *guard;
        if st.recorded == self.tasks {
            return Msg::Done;
        }
        while let Some(id) = st.queue.pop_front() {
            if st.results[id as usize].is_none() {
                st.in_flight.entry(conn).or_default().push(id);
                return Msg::Task {
                    id,
                    seed: task_seed(id),
                    samples: self.samples,
                };
            }
        }
        Msg::Wait
    }

    /// Err closes the connection (its in-flight tasks, this one included, are re-queued).
    fn record(&self, conn: u64, id: u64, inside: u64) -> Result<(), String> {
        if id >= self.tasks {
            return Err(format!("RESULT for unknown task {id}"));
        }
        if inside > self.samples {
            return Err(format!(
                "RESULT {id} {inside}: more than {} samples",
                self.samples
            ));
        }
        let mut guard = self.lock();
        let st = &mut *guard;
        let flight = st.in_flight.entry(conn).or_default();
        let pos = flight.iter().position(|&t| t == id);
        let solicited = pos.map(|p| flight.swap_remove(p)).is_some();
        match st.results[id as usize] {
            Some(prev) if prev == inside => {
                dlog!("duplicate result for task {id} ignored");
            }
            Some(prev) => dlog!(
                "MISMATCH for task {id}: recorded inside={prev}, \
                 executor #{conn} sent {inside}; keeping the recorded value"
            ),
            None => {
                if !solicited {
                    dlog!(
                        "executor #{conn} sent a result for task {id} it was not given; accepted"
                    );
                }
                st.results[id as usize] = Some(inside);
                st.recorded += 1;
                st.inside_total += inside;
                let step = (self.tasks / 10).max(1);
                if st.recorded.is_multiple_of(step) || st.recorded == self.tasks {
                    dlog!("{}/{} results in", st.recorded, self.tasks);
                }
                self.changed.notify_all();
            }
        }
        Ok(())
    }

    fn serve(&self, stream: TcpStream, peer: String) {
        let conn = {
            let mut st = self.lock();
            st.next_conn += 1;
            st.active += 1;
            let conn = st.next_conn;
            st.in_flight.insert(conn, Vec::new());
            dlog!(
                "executor #{conn} connected from {peer} ({} active)",
                st.active
            );
            conn
        };
        let _ = stream.set_nodelay(true);
        let reason = self.conversation(conn, &stream);
        let _ = stream.shutdown(std::net::Shutdown::Both);
        let mut guard = self.lock();
        let st = &mut *guard;
        st.active -= 1;
        let held = st.in_flight.remove(&conn).unwrap_or_default();
        let back: Vec<u64> = held
            .into_iter()
            .filter(|&t| st.results[t as usize].is_none())
            .collect();
        for &t in back.iter().rev() {
            st.queue.push_front(t);
        }
        st.requeued += back.len() as u64;
        dlog!(
            "executor #{conn} disconnected ({reason}); {} active",
            st.active
        );
        if !back.is_empty() {
            dlog!(
                "re-queued {} task(s) of executor #{conn}: {back:?}",
                back.len()
            );
        }
        self.changed.notify_all();
    }

    /// Waits until `pred` holds or `timeout` passes; returns whether it holds.
    fn wait_until(&self, timeout: Duration, pred: impl Fn(&State) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut st = self.lock();
        while !pred(&st) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            st = self
                .changed
                .wait_timeout(st, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }

    /// Blocks until every task has a result (waiting for new executors if need be).
    fn wait_complete(&self) -> String {
        while !self.wait_until(Duration::from_secs(3600), |st| st.recorded == self.tasks) {}
        result_line(self.lock().inside_total, self.tasks, self.samples)
    }

    /// Runs one connection until it ends; returns why it ended.
    fn conversation(&self, conn: u64, stream: &TcpStream) -> String {
        let mut reader = BufReader::new(stream);
        let mut writer = stream;
        loop {
            let line = match read_line(&mut reader) {
                Ok(Some(line)) => line,
                Ok(None) => return "closed by peer".into(),
                Err(e) => return format!("read failed: {e}"),
            };
            let reply = match Msg::parse(&line) {
                Ok(Msg::Get) => self.next_reply(conn),
                Ok(Msg::Result { id, inside }) => match self.record(conn, id, inside) {
                    Ok(()) => continue,
                    Err(e) => return format!("protocol error: {e}"),
                },
                Ok(other) => return format!("protocol error: unexpected {other:?}"),
                Err(e) => return format!("protocol error: {e}"),
            };
            if let Err(e) = writer.write_all(reply.to_line().as_bytes()) {
                return format!("write failed: {e}");
            }
        }
    }
}

/// Binds, starts the accept loop (a thread per connection) and returns the shared state.
fn start_driver(
    addr: SocketAddr,
    tasks: u64,
    samples: u64,
) -> io::Result<(Arc<Shared>, SocketAddr)> {
    let listener = TcpListener::bind(addr)?;
    let addr = listener.local_addr()?;
    let state = State {
        queue: (0..tasks).collect(),
        results: vec![None; tasks as usize],
        ..State::default()
    };
    let shared = Arc::new(Shared {
        tasks,
        samples,
        state: Mutex::new(state),
        changed: Condvar::new(),
    });
    let sh = shared.clone();
    thread::Builder::new()
        .name("accept".into())
        .spawn(move || {
            for conn in listener.incoming() {
                match conn {
                    Ok(stream) => {
                        let peer = stream.peer_addr().map_or("?".into(), |a| a.to_string());
                        let sh = sh.clone();
                        if let Err(e) = thread::Builder::new().spawn(move || sh.serve(stream, peer))
                        {
                            dlog!("cannot start a connection thread: {e}");
                        }
                    }
                    Err(e) => {
                        dlog!("accept failed: {e}");
                        thread::sleep(Duration::from_millis(100));
                    }
                }
            }
        })?;
    Ok((shared, addr))
}

// ---------------------------------------------------------------- executor

#[derive(Debug, PartialEq, Eq)]
enum ExecEnd {
    Done,
    Closed,
}

/// GET / compute / RESULT until DONE or the driver goes away; Err on a malformed reply.
fn executor_session(
    stream: &TcpStream,
    tag: &str,
    mut compute: impl FnMut(u64, u64) -> u64,
) -> Result<ExecEnd, String> {
    let mut reader = BufReader::new(stream);
    let mut writer = stream;
    let closed = |e: io::Error| {
        eprintln!("{tag}: connection closed by the driver ({e})");
        Ok(ExecEnd::Closed)
    };
    let mut out = Msg::Get.to_line();
    loop {
        if let Err(e) = writer.write_all(out.as_bytes()) {
            return closed(e);
        }
        let line = match read_line(&mut reader) {
            Ok(Some(line)) => line,
            Ok(None) => return Ok(ExecEnd::Closed),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                return Err(format!("bad line from driver: {e}"))
            }
            Err(e) => return closed(e),
        };
        out = match Msg::parse(&line)? {
            Msg::Done => return Ok(ExecEnd::Done),
            Msg::Wait => {
                thread::sleep(Duration::from_millis(50));
                Msg::Get.to_line()
            }
            Msg::Task { id, seed, samples } => {
                eprintln!("{tag}: computing task {id} (seed {seed}, {samples} samples)");
                let inside = compute(seed, samples);
                Msg::Result { id, inside }.to_line() + &Msg::Get.to_line()
            }
            other => return Err(format!("unexpected {other:?} from driver")),
        };
    }
}

fn connect_with_retry(addr: &str, tag: &str) -> Result<TcpStream, String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut backoff = Duration::from_millis(50);
    loop {
        match TcpStream::connect(addr) {
            Ok(s) => return Ok(s),
            Err(e) if Instant::now() + backoff > deadline => {
                return Err(format!("cannot connect to driver {addr} for 30 s: {e}"));
            }
            Err(e) => eprintln!("{tag}: driver {addr} not reachable yet ({e}); retrying"),
        }
        thread::sleep(backoff);
        backoff = (backoff * 2).min(Duration::from_secs(1));
    }
}

// ---------------------------------------------------------------- command line

/// Ok(exit code) or Err((exit code, message)); code 2 is bad usage.
type Outcome<T = i32> = Result<T, (i32, String)>;

fn usage<T>(msg: impl Into<String>) -> Outcome<T> {
    Err((2, msg.into()))
}

/// `--name value` or `--name=value`, each at most once, names from `known` only.
fn parse_flags(args: &[String], known: &[&str]) -> Outcome<HashMap<String, String>> {
    let mut flags = HashMap::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        if !known.contains(&name) {
            return usage(format!("unknown argument {arg:?}"));
        }
        let Some(value) = inline.or_else(|| it.next().cloned()) else {
            return usage(format!("{name} needs a value"));
        };
        if flags.insert(name.to_string(), value).is_some() {
            return usage(format!("{name} given twice"));
        }
    }
    Ok(flags)
}

/// The flag's value, else the env var's, parsed; Ok(None) when neither is set.
fn flag_or_env<T: std::str::FromStr>(
    flags: &HashMap<String, String>,
    name: &str,
    var: &str,
) -> Outcome<Option<T>> {
    let from_env = || (!var.is_empty()).then(|| env::var(var).ok()).flatten();
    match flags.get(name).cloned().or_else(from_env) {
        None => Ok(None),
        Some(v) => match v.trim().parse() {
            Ok(x) => Ok(Some(x)),
            Err(_) => {
                let what: Vec<&str> = [name, var].into_iter().filter(|s| !s.is_empty()).collect();
                usage(format!("bad value for {}: {v:?}", what.join(" / ")))
            }
        },
    }
}

/// (tasks, samples per task), validated.
fn task_shape(flags: &HashMap<String, String>) -> Outcome<(u64, u64)> {
    let tasks = flag_or_env(flags, "--tasks", "")?.unwrap_or(DEFAULT_TASKS);
    let samples = flag_or_env(flags, "--samples-per-task", "")?.unwrap_or(DEFAULT_SAMPLES);
    if tasks == 0 || tasks > MAX_TASKS {
        return usage(format!("--tasks must be between 1 and {MAX_TASKS}"));
    }
    if samples == 0 || tasks.checked_mul(samples).is_none() {
        return usage("--samples-per-task must be >= 1 and tasks*samples must fit in 64 bits");
    }
    Ok((tasks, samples))
}

fn run_driver(args: &[String]) -> Outcome {
    let flags = parse_flags(
        args,
        &["--tasks", "--samples-per-task", "--port", "--exit-code"],
    )?;
    let (tasks, samples) = task_shape(&flags)?;
    let Some(port) = flag_or_env::<u16>(&flags, "--port", "HEARTH_DRIVER_PORT")? else {
        return usage("no port: pass --port P or set HEARTH_DRIVER_PORT");
    };
    let exit_code = flag_or_env::<u8>(&flags, "--exit-code", "")?.unwrap_or(0);
    let addr = SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
    let (driver, addr) = start_driver(addr, tasks, samples)
        .map_err(|e| (1, format!("cannot listen on {addr}: {e}")))?;
    dlog!("listening on {addr}; {tasks} tasks x {samples} samples");
    let line = driver.wait_complete();
    let mut out = io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(|e| (1, format!("cannot write stdout: {e}")))?;
    // Let connected executors collect their DONE before the process goes away.
    driver.wait_until(Duration::from_secs(2), |st| st.active == 0);
    dlog!("all {tasks} results in; exiting with code {exit_code}");
    Ok(i32::from(exit_code))
}

fn run_executor(args: &[String]) -> Outcome {
    let flags = parse_flags(args, &["--driver"])?;
    let Some(addr) = flag_or_env::<String>(&flags, "--driver", "HEARTH_DRIVER_URL")? else {
        return usage("no driver: pass --driver HOST:PORT or set HEARTH_DRIVER_URL");
    };
    let delay_ms = flag_or_env(&flags, "", "HEARTH_PI_TASK_DELAY_MS")?.unwrap_or(0);
    let mut tag = "hearth-pi executor".to_string();
    for (var, label) in [("HEARTH_EXECUTOR_ID", "executor"), ("HEARTH_APP_ID", "app")] {
        if let Ok(v) = env::var(var) {
            tag.push_str(&format!(" {label}={v}"));
        }
    }
    let stream = connect_with_retry(&addr, &tag).map_err(|e| (1, e))?;
    let _ = stream.set_nodelay(true);
    eprintln!("{tag}: connected to driver {addr}");
    let end = executor_session(&stream, &tag, |seed, samples| {
        thread::sleep(Duration::from_millis(delay_ms));
        count_inside(seed, samples)
    })
    .map_err(|e| (1, e))?;
    eprintln!("{tag}: finished ({end:?}); exiting");
    Ok(0)
}

fn run_expected(args: &[String]) -> Outcome {
    let (tasks, samples) = task_shape(&parse_flags(args, &["--tasks", "--samples-per-task"])?)?;
    println!("{}", expected_line(tasks, samples));
    Ok(0)
}

fn main() {
    let args: Vec<String> = env::args().skip(1).collect();
    let rest = args.get(1..).unwrap_or(&[]);
    let help = if rest.iter().any(|a| a == "-h" || a == "--help") {
        match args[0].as_str() {
            "driver" => Some(DRIVER_HELP),
            "executor" => Some(EXECUTOR_HELP),
            "expected" => Some(EXPECTED_HELP),
            _ => None,
        }
    } else {
        None
    };
    let outcome = match (args.first().map(String::as_str), help) {
        (_, Some(_)) | (Some("-h" | "--help" | "help"), None) => {
            print!("{}", help.unwrap_or(USAGE));
            Ok(0)
        }
        (Some("driver"), _) => run_driver(rest),
        (Some("executor"), _) => run_executor(rest),
        (Some("expected"), _) => run_expected(rest),
        (Some(other), _) => usage(format!("unknown role {other:?}\n{USAGE}")),
        (None, _) => usage(USAGE),
    };
    process::exit(match outcome {
        Ok(code) => code,
        Err((code, msg)) => {
            eprintln!("hearth-pi: {}", msg.trim_end());
            code
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    const LONG: Duration = Duration::from_secs(30);

    fn start(tasks: u64, samples: u64) -> (Arc<Shared>, SocketAddr) {
        start_driver(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), tasks, samples).unwrap()
    }

    /// A hand-driven executor connection for protocol tests.
    struct Raw(BufReader<TcpStream>);

    impl Raw {
        fn connect(addr: SocketAddr) -> Raw {
            let s = TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(LONG)).unwrap();
            Raw(BufReader::new(s))
        }
        fn send(&mut self, line: &str) {
            self.0.get_mut().write_all(line.as_bytes()).unwrap();
        }
        fn ask(&mut self, line: &str) -> io::Result<Option<String>> {
            self.send(line);
            read_line(&mut self.0)
        }
        /// Whether the driver closes the connection after `line` (a read timeout is not that).
        fn closed_after(&mut self, line: &str) -> bool {
            match self.ask(line) {
                Ok(reply) => reply.is_none(),
                Err(e) => !matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ),
            }
        }
        fn get_task(&mut self) -> (u64, u64, u64) {
            match Msg::parse(&self.ask("GET\n").unwrap().unwrap()).unwrap() {
                Msg::Task { id, seed, samples } => (id, seed, samples),
                other => panic!("expected a task, got {other:?}"),
            }
        }
    }

    #[test]
    fn prng_is_deterministic() {
        assert_eq!(SplitMix64(0).next_u64(), 0xE220_A839_7B1D_CDAF); // reference value
        let (mut a, mut b) = (SplitMix64(7), SplitMix64(7));
        for _ in 0..1000 {
            assert_eq!(a.next_u64(), b.next_u64());
            let x = a.next_f64();
            assert_eq!(x.to_bits(), b.next_f64().to_bits());
            assert!((0.0..1.0).contains(&x));
        }
        assert_eq!(
            count_inside(task_seed(3), 5000),
            count_inside(task_seed(3), 5000)
        );
        assert_ne!(task_seed(0), task_seed(1));
        let inside = count_inside(task_seed(0), 200_000);
        assert!((4.0 * inside as f64 / 200_000.0 - std::f64::consts::PI).abs() < 0.02);
        assert_eq!(
            result_line(3, 1, 4),
            "pi=3.000000000000 inside=3 samples=4 tasks=1"
        );
        assert_eq!(expected_line(5, 100), expected_line(5, 100));
    }

    #[test]
    fn protocol_parsing() {
        let (task, result) = (
            Msg::Task {
                id: 1,
                seed: u64::MAX,
                samples: 9,
            },
            Msg::Result { id: 7, inside: 0 },
        );
        for m in [Msg::Get, Msg::Wait, Msg::Done, task, result] {
            assert_eq!(Msg::parse(m.to_line().strip_suffix('\n').unwrap()), Ok(m));
        }
        assert_eq!(
            Msg::parse("TASK 3 4 5"),
            Ok(Msg::Task {
                id: 3,
                seed: 4,
                samples: 5
            })
        );
        assert_eq!(
            Msg::parse("RESULT 3 18446744073709551615"),
            Ok(Msg::Result {
                id: 3,
                inside: u64::MAX
            })
        );
        let bad = "|get|GET |  GET|WAIT now|DONE\r|HELLO|RESULT 1|RESULT 1 2 3|RESULT -1 2|RESULT +1 2|\
                   RESULT 1  2|RESULT 0x1 2|RESULT 18446744073709551616 1|TASK 1 2|TASK 1 2 x|TASK 1 2 3 4";
        for line in bad.split('|') {
            assert!(Msg::parse(line).is_err(), "{line:?}");
        }
        let mut r = io::Cursor::new(b"GET\r\nRESULT 1 2\n".to_vec());
        assert_eq!(read_line(&mut r).unwrap().as_deref(), Some("GET"));
        assert_eq!(read_line(&mut r).unwrap().as_deref(), Some("RESULT 1 2"));
        assert_eq!(read_line(&mut r).unwrap(), None);
        let kind = |bytes: &[u8]| {
            read_line(&mut io::Cursor::new(bytes.to_vec()))
                .unwrap_err()
                .kind()
        };
        assert_eq!(kind(b"DON"), io::ErrorKind::UnexpectedEof);
        assert_eq!(kind(&[b'x'; 1000]), io::ErrorKind::InvalidData);
        assert_eq!(kind(b"\xff\n"), io::ErrorKind::InvalidData);
    }

    #[test]
    fn two_executors_one_killed_mid_run() {
        let (tasks, samples) = (30, 2000);
        let (driver, addr) = start(tasks, samples);
        // The victim computes two tasks, then reports that it holds a third and blocks on it.
        let victim = TcpStream::connect(addr).unwrap();
        let victim_handle = victim.try_clone().unwrap();
        let (held_tx, held_rx) = mpsc::channel();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let victim_thread = thread::spawn(move || {
            let mut n = 0;
            executor_session(&victim, "victim", |seed, samples| {
                n += 1;
                if n == 3 {
                    held_tx.send(seed).unwrap();
                    go_rx.recv().unwrap();
                }
                count_inside(seed, samples)
            })
        });
        // The good executor holds its first task until the victim holds its third one.
        let good = TcpStream::connect(addr).unwrap();
        let (gate_tx, gate_rx) = mpsc::channel::<()>();
        let good_thread = thread::spawn(move || {
            executor_session(&good, "good", |seed, samples| {
                let _ = gate_rx.recv();
                count_inside(seed, samples)
            })
        });
        let held_seed = held_rx.recv_timeout(LONG).unwrap();
        gate_tx.send(()).unwrap();
        drop(gate_tx);
        // Kill the victim's connection while it holds a task, so the run cannot finish without it.
        victim_handle.shutdown(std::net::Shutdown::Both).unwrap();
        assert!(driver.wait_until(LONG, |st| st.requeued >= 1));
        go_tx.send(()).unwrap();
        assert_eq!(victim_thread.join().unwrap(), Ok(ExecEnd::Closed));
        assert_eq!(good_thread.join().unwrap(), Ok(ExecEnd::Done));
        assert!(driver.wait_until(LONG, |st| st.active == 0));
        {
            let st = driver.lock();
            assert_eq!(st.recorded, tasks);
            let held_id = (0..tasks).find(|&id| task_seed(id) == held_seed).unwrap();
            assert!(st.results[held_id as usize].is_some());
        }
        assert_eq!(driver.wait_complete(), expected_line(tasks, samples));
    }

    #[test]
    fn driver_survives_bad_peers_and_waits_for_new_executors() {
        let (tasks, samples) = (4, 500);
        let (driver, addr) = start(tasks, samples);
        // Takes two tasks, reports one right, then talks garbage: connection closed, task re-queued.
        let mut a = Raw::connect(addr);
        let (id0, seed0, m) = a.get_task();
        let (id1, _, _) = a.get_task();
        let right0 = count_inside(seed0, m);
        a.send(&format!("RESULT {id0} {right0}\n"));
        assert!(a.closed_after("HELLO\n"));
        assert!(driver.wait_until(LONG, |st| st.active == 0 && st.requeued == 1));
        assert_eq!(driver.lock().queue.front(), Some(&id1));
        // A wrong duplicate is logged and ignored; an unknown id or an impossible count closes.
        let mut b = Raw::connect(addr);
        b.send(&format!("RESULT {id0} {}\n", right0 + 1));
        b.send(&format!("RESULT {id0} {right0}\n"));
        assert!(b.closed_after(&format!("RESULT {tasks} 1\n")));
        let mut c = Raw::connect(addr);
        assert!(c.closed_after(&format!("RESULT {id1} {}\n", samples + 1)));
        assert!(driver.wait_until(LONG, |st| st.active == 0));
        {
            let st = driver.lock();
            assert_eq!((st.recorded, st.results[id0 as usize]), (1, Some(right0)));
        }
        // Every executor is gone: the driver keeps waiting, and a new one finishes the run.
        assert!(!driver.wait_until(Duration::from_millis(100), |st| st.recorded == tasks));
        let mut d = Raw::connect(addr);
        let mut seen = Vec::new();
        loop {
            match Msg::parse(&d.ask("GET\n").unwrap().unwrap()).unwrap() {
                Msg::Task { id, seed, samples } => {
                    seen.push(id);
                    let inside = count_inside(seed, samples);
                    d.send(&Msg::Result { id, inside }.to_line());
                }
                Msg::Done => break,
                other => panic!("nothing else is in flight, yet got {other:?}"),
            }
        }
        seen.sort_unstable();
        assert_eq!(seen.len(), 3);
        assert!(seen.contains(&id1) && !seen.contains(&id0));
        assert_eq!(driver.wait_complete(), expected_line(tasks, samples));
        drop(d);
    }
}
