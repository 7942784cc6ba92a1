//! The line protocol between driver and executors.

use super::*;

/// One protocol message; `Get` and `Result` go to the driver, the others to an executor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Msg {
    Get,
    Result { id: u64, inside: u64 },
    Task { id: u64, seed: u64, samples: u64 },
    Wait,
    Done,
}

pub(crate) fn num(tok: &str) -> Result<u64, String> {
    if tok.is_empty() || !tok.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("bad number {tok:?}"));
    }
    tok.parse()
        .map_err(|_| format!("number out of range {tok:?}"))
}

impl Msg {
    pub(crate) fn parse(line: &str) -> Result<Msg, String> {
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

    pub(crate) fn to_line(self) -> String {
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
pub(crate) fn read_line(r: &mut impl BufRead) -> io::Result<Option<String>> {
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
