//! The executor: pull a task, compute, return the result, until DONE.

use super::*;

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ExecEnd {
    Done,
    Closed,
}

/// GET / compute / RESULT until DONE or the driver goes away; Err on a malformed reply.
pub(crate) fn executor_session(
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

pub(crate) fn connect_with_retry(addr: &str, tag: &str) -> Result<TcpStream, String> {
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
