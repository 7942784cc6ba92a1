//! Unit tests of the protocol, the computation and the driver, on loopback.

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
