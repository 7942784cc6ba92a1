//! Record framing and payload encoding (the byte-level contract in FORMAT.md).
//!
//! A record is a 16-byte header and a payload:
//!
//! | bytes  | field |
//! | ------ | ----- |
//! | 0      | kind: `H` segment header, `J` journal entry, `S` snapshot |
//! | 1      | format version ([`VERSION`]) |
//! | 2..4   | flags, u16 LE, 0 |
//! | 4..8   | payload length, u32 LE |
//! | 8..12  | CRC32C of the payload, u32 LE |
//! | 12..16 | CRC32C of bytes 0..12, u32 LE |
//!
//! The header has its own checksum so a damaged length is never trusted: a record whose
//! header verifies but whose payload runs past the end of the file was cut by a crash,
//! while a header that does not verify is damage (or a torn write, decided by position).

use hearth_core::{ClusterState, Command};
use serde::{Deserialize, Serialize};
use std::fmt;

pub(crate) const HEADER_LEN: usize = 16;
/// The one format version this build writes and reads.
pub(crate) const VERSION: u8 = 1;

/// Record types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    SegmentHeader = b'H',
    Entry = b'J',
    Snapshot = b'S',
}

impl Kind {
    fn describe(self) -> &'static str {
        match self {
            Kind::SegmentHeader => "a segment header ('H')",
            Kind::Entry => "a journal entry ('J')",
            Kind::Snapshot => "a snapshot ('S')",
        }
    }
}

/// A record that passed both checksums.
#[derive(Debug)]
pub(crate) struct Frame<'a> {
    pub kind: u8,
    pub payload: &'a [u8],
    /// Header plus payload.
    pub total_len: usize,
}

/// A segment's first record: which LSN the segment starts at.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SegmentHeader {
    pub first_lsn: u64,
}

/// Appends a framed record whose payload is `out[start + HEADER_LEN..]`: the caller pushes
/// [`HEADER_LEN`] placeholder bytes at `start`, writes the payload after them, then calls
/// this to fill the header in.
pub(crate) fn seal(kind: Kind, out: &mut [u8], start: usize) {
    let len = out.len() - start - HEADER_LEN;
    let len = u32::try_from(len).expect("callers check the record size limit");
    let payload_crc = crc32c::crc32c(&out[start + HEADER_LEN..]);
    let h = &mut out[start..start + HEADER_LEN];
    h[0] = kind as u8;
    h[1] = VERSION;
    h[2..4].copy_from_slice(&0u16.to_le_bytes());
    h[4..8].copy_from_slice(&len.to_le_bytes());
    h[8..12].copy_from_slice(&payload_crc.to_le_bytes());
    let header_crc = crc32c::crc32c(&h[..12]);
    h[12..16].copy_from_slice(&header_crc.to_le_bytes());
}

/// The largest payload a record may carry.
pub(crate) const MAX_PAYLOAD: usize = u32::MAX as usize;

/// A framed segment header record.
pub(crate) fn segment_header(first_lsn: u64) -> Vec<u8> {
    let mut out = vec![0u8; HEADER_LEN];
    out = postcard::to_extend(&SegmentHeader { first_lsn }, out).expect("encoding to a Vec");
    seal(Kind::SegmentHeader, &mut out, 0);
    out
}

/// Encodes a command's body (the part of an entry that does not depend on its LSN), so
/// it can be done before the append lock is taken.
pub(crate) fn encode_command(cmd: &Command) -> Vec<u8> {
    postcard::to_stdvec(cmd).expect("encoding a Command to a Vec cannot fail")
}

/// Appends a framed journal entry to `out`. Its payload is the postcard encoding of the
/// tuple `(lsn, command)`, which is the varint `lsn` followed by the command's encoding.
pub(crate) fn entry(out: &mut Vec<u8>, lsn: u64, command_body: &[u8]) {
    let start = out.len();
    out.resize(start + HEADER_LEN, 0);
    let mut varint = [0u8; 10];
    let lsn_bytes = postcard::to_slice(&lsn, &mut varint).expect("a u64 varint fits 10 bytes");
    out.extend_from_slice(lsn_bytes);
    out.extend_from_slice(command_body);
    seal(Kind::Entry, out, start);
}

/// A framed snapshot record: postcard of `(lsn, state)`.
pub(crate) fn snapshot(lsn: u64, state: &ClusterState) -> Result<Vec<u8>, String> {
    let out = vec![0u8; HEADER_LEN];
    let mut out = postcard::to_extend(&(lsn, state), out).map_err(|e| e.to_string())?;
    if out.len() - HEADER_LEN > MAX_PAYLOAD {
        return Err(format!(
            "the state encodes to {} bytes, more than a record holds",
            out.len() - HEADER_LEN
        ));
    }
    seal(Kind::Snapshot, &mut out, 0);
    Ok(out)
}

/// Reads the record at `buf[off..]`, checking both checksums, the version and the flags.
pub(crate) fn read(buf: &[u8], off: usize) -> Result<Frame<'_>, Problem> {
    let rest = &buf[off.min(buf.len())..];
    if rest.len() < HEADER_LEN {
        return Err(Problem::ShortHeader {
            available: rest.len() as u64,
        });
    }
    let h = &rest[..HEADER_LEN];
    let word = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    if crc32c::crc32c(&h[..12]) != word(12) {
        return Err(Problem::BadHeaderChecksum);
    }
    if h[1] != VERSION {
        return Err(Problem::UnknownVersion(h[1]));
    }
    let flags = u16::from_le_bytes([h[2], h[3]]);
    if flags != 0 {
        return Err(Problem::UnknownFlags(flags));
    }
    let len = word(4) as usize;
    let available = rest.len() - HEADER_LEN;
    if len > available {
        return Err(Problem::PastEof {
            len: len as u64,
            available: available as u64,
        });
    }
    let payload = &rest[HEADER_LEN..HEADER_LEN + len];
    if crc32c::crc32c(payload) != word(8) {
        return Err(Problem::BadChecksum);
    }
    Ok(Frame {
        kind: h[0],
        payload,
        total_len: HEADER_LEN + len,
    })
}

/// Whether any offset after `from` starts a record that passes both checksums. A bad
/// record followed by a valid one is damage in the middle, never a torn tail.
pub(crate) fn valid_record_after(buf: &[u8], from: usize) -> bool {
    (from + 1..buf.len().saturating_sub(HEADER_LEN - 1)).any(|off| read(buf, off).is_ok())
}

fn expect_kind(frame: &Frame<'_>, kind: Kind) -> Result<(), Problem> {
    if frame.kind == kind as u8 {
        Ok(())
    } else {
        Err(Problem::UnexpectedKind {
            found: frame.kind,
            expected: kind.describe(),
        })
    }
}

fn decode_all<'a, T: Deserialize<'a>>(payload: &'a [u8]) -> Result<T, Problem> {
    let (value, rest) =
        postcard::take_from_bytes::<T>(payload).map_err(|e| Problem::Decode(e.to_string()))?;
    if !rest.is_empty() {
        return Err(Problem::Decode(format!(
            "{} bytes left over after the value",
            rest.len()
        )));
    }
    Ok(value)
}

/// Decodes a snapshot file's bytes: exactly one `S` record.
pub(crate) fn read_snapshot(buf: &[u8]) -> Result<(u64, ClusterState), (u64, Problem)> {
    let frame = read(buf, 0).map_err(|p| (0, p))?;
    expect_kind(&frame, Kind::Snapshot).map_err(|p| (0, p))?;
    let value = decode_all::<(u64, ClusterState)>(frame.payload).map_err(|p| (0, p))?;
    if frame.total_len != buf.len() {
        let extra = (buf.len() - frame.total_len) as u64;
        return Err((frame.total_len as u64, Problem::TrailingBytes(extra)));
    }
    Ok(value)
}

/// The first bad record of a segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BadRecord {
    /// 0 = the segment header.
    pub index: u64,
    pub offset: u64,
    pub problem: Problem,
}

/// What reading one segment found.
#[derive(Debug)]
pub(crate) struct SegmentScan {
    /// Journal entries read (the header not counted).
    pub entries: u64,
    /// Bytes up to the end of the last good record.
    pub valid_len: u64,
    pub bad: Option<BadRecord>,
}

/// Reads a segment: its header, then entries whose LSNs run on from `first_lsn` (taken
/// from the file name) without a gap. Each entry goes to `visit`; an error from `visit`
/// stops the scan at that record. Reading stops at the first bad record.
pub(crate) fn scan_segment(
    buf: &[u8],
    first_lsn: u64,
    mut visit: impl FnMut(u64, Command) -> Result<(), Problem>,
) -> SegmentScan {
    let mut off = 0usize;
    let mut index = 0u64;
    let mut bad = None;
    while off < buf.len() || index == 0 {
        let checked = read(buf, off).and_then(|frame| {
            if index == 0 {
                expect_kind(&frame, Kind::SegmentHeader)?;
                let header: SegmentHeader = decode_all(frame.payload)?;
                if header.first_lsn != first_lsn {
                    return Err(Problem::HeaderMismatch {
                        name_lsn: first_lsn,
                        header_lsn: header.first_lsn,
                    });
                }
            } else {
                expect_kind(&frame, Kind::Entry)?;
                let (lsn, cmd) = decode_all::<(u64, Command)>(frame.payload)?;
                let expected = first_lsn + index - 1;
                if lsn != expected {
                    return Err(Problem::LsnMismatch {
                        expected,
                        found: lsn,
                    });
                }
                visit(lsn, cmd)?;
            }
            Ok(frame.total_len)
        });
        match checked {
            Ok(len) => {
                off += len;
                index += 1;
            }
            Err(problem) => {
                bad = Some(BadRecord {
                    index,
                    offset: off as u64,
                    problem,
                });
                break;
            }
        }
    }
    SegmentScan {
        entries: index.saturating_sub(1),
        valid_len: off as u64,
        bad,
    }
}

/// What is wrong with one record. Displayed after "`<file>` record N at offset M ".
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// Fewer bytes than a record header are left in the file.
    ShortHeader { available: u64 },
    /// The header's own CRC32C does not match (kind, version, flags or length damaged).
    BadHeaderChecksum,
    /// A valid header of a format version this build does not read.
    UnknownVersion(u8),
    /// A valid header with flags this build does not know.
    UnknownFlags(u16),
    /// A valid header of the wrong record type for its place in the file.
    UnexpectedKind { found: u8, expected: &'static str },
    /// The header declares more payload than the file holds.
    PastEof { len: u64, available: u64 },
    /// The payload's CRC32C does not match.
    BadChecksum,
    /// The checksums match but the payload does not decode (a bug or a foreign file).
    Decode(String),
    /// The record's LSN is not the one its position requires.
    LsnMismatch { expected: u64, found: u64 },
    /// A segment header whose first LSN disagrees with the file name.
    HeaderMismatch { name_lsn: u64, header_lsn: u64 },
    /// A segment starts at an LSN that does not follow what comes before it.
    SegmentGap { expected: u64, first: u64 },
    /// A snapshot file holds bytes after its one record.
    TrailingBytes(u64),
}

impl Problem {
    /// Whether an interrupted write can produce this (only such damage at the very end of
    /// the newest segment is truncated as a torn tail; anything else is corruption).
    pub fn may_be_torn(&self) -> bool {
        matches!(
            self,
            Problem::ShortHeader { .. }
                | Problem::BadHeaderChecksum
                | Problem::PastEof { .. }
                | Problem::BadChecksum
        )
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::ShortHeader { available } => write!(
                f,
                "is cut short: only {available} of the {} header bytes are there",
                HEADER_LEN
            ),
            Problem::BadHeaderChecksum => f.write_str("has a bad header checksum"),
            Problem::UnknownVersion(v) => write!(
                f,
                "has format version {v}, which this build does not read (it reads version {}); \
                 use the hearth release that wrote it",
                VERSION
            ),
            Problem::UnknownFlags(x) => write!(f, "has unknown flags 0x{x:04x}"),
            Problem::UnexpectedKind { found, expected } => write!(
                f,
                "has record type 0x{found:02x} where {expected} was expected"
            ),
            Problem::PastEof { len, available } => write!(
                f,
                "is cut short: it declares {len} payload bytes but only {available} are there"
            ),
            Problem::BadChecksum => f.write_str("has a bad checksum"),
            Problem::Decode(e) => write!(f, "has valid checksums but does not decode: {e}"),
            Problem::LsnMismatch { expected, found } => write!(
                f,
                "holds lsn {found} where lsn {expected} was expected (a gap or a repeat)"
            ),
            Problem::HeaderMismatch {
                name_lsn,
                header_lsn,
            } => write!(
                f,
                "is a segment header for lsn {header_lsn} but the file name says {name_lsn}"
            ),
            Problem::SegmentGap { expected, first } => write!(
                f,
                "starts the segment at lsn {first} but the journal before it ends at lsn {} \
                 (records are missing)",
                expected.saturating_sub(1)
            ),
            Problem::TrailingBytes(n) => write!(f, "is followed by {n} unexpected bytes"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_core::Millis;

    fn cmd(n: u64) -> Command {
        Command::BeginRecovery { at: Millis(n) }
    }

    fn segment(first: u64, n: u64) -> Vec<u8> {
        let mut buf = segment_header(first);
        for lsn in first..first + n {
            entry(&mut buf, lsn, &encode_command(&cmd(lsn)));
        }
        buf
    }

    #[test]
    fn entry_payload_is_the_postcard_tuple() {
        let mut out = Vec::new();
        let c = cmd(7);
        entry(&mut out, 300, &encode_command(&c));
        let frame = read(&out, 0).unwrap();
        assert_eq!(frame.kind, b'J');
        assert_eq!(frame.payload, postcard::to_stdvec(&(300u64, &c)).unwrap());
        assert_eq!(frame.total_len, out.len());
    }

    #[test]
    fn segment_round_trips() {
        let buf = segment(5, 3);
        let mut seen = Vec::new();
        let scan = scan_segment(&buf, 5, |lsn, c| {
            seen.push((lsn, c));
            Ok(())
        });
        assert_eq!(scan.bad, None);
        assert_eq!(scan.entries, 3);
        assert_eq!(scan.valid_len, buf.len() as u64);
        assert_eq!(seen, vec![(5, cmd(5)), (6, cmd(6)), (7, cmd(7))]);
    }

    #[test]
    fn every_flipped_bit_is_detected() {
        let buf = segment(1, 2);
        for i in 0..buf.len() {
            for bit in 0..8 {
                let mut b = buf.clone();
                b[i] ^= 1 << bit;
                let scan = scan_segment(&b, 1, |_, _| Ok(()));
                assert!(scan.bad.is_some(), "flip of bit {bit} at {i} not detected");
            }
        }
    }

    #[test]
    fn cuts_are_torn_and_name_the_record() {
        let buf = segment(1, 2);
        let second = read(&buf, 0).unwrap().total_len;
        let third = second + read(&buf, second).unwrap().total_len;
        for cut in third + 1..buf.len() {
            let scan = scan_segment(&buf[..cut], 1, |_, _| Ok(()));
            let bad = scan.bad.expect("cut detected");
            assert_eq!((bad.index, bad.offset), (2, third as u64));
            assert!(bad.problem.may_be_torn(), "{:?}", bad.problem);
            assert_eq!(scan.valid_len, third as u64);
        }
    }

    #[test]
    fn an_empty_file_has_a_torn_header() {
        let scan = scan_segment(&[], 1, |_, _| Ok(()));
        assert_eq!(
            scan.bad,
            Some(BadRecord {
                index: 0,
                offset: 0,
                problem: Problem::ShortHeader { available: 0 }
            })
        );
    }

    #[test]
    fn version_and_lsn_problems_are_not_torn() {
        let mut buf2 = segment_header(1);
        let start = buf2.len();
        entry(&mut buf2, 9, &encode_command(&cmd(1)));
        let bad = scan_segment(&buf2, 1, |_, _| Ok(())).bad.unwrap();
        assert_eq!(bad.offset, start as u64);
        assert_eq!(
            bad.problem,
            Problem::LsnMismatch {
                expected: 1,
                found: 9
            }
        );
        assert!(!bad.problem.may_be_torn());
        // A future version with a valid header checksum.
        let mut v2 = segment_header(1);
        v2[1] = 2;
        let crc = crc32c::crc32c(&v2[..12]);
        v2[12..16].copy_from_slice(&crc.to_le_bytes());
        let bad = scan_segment(&v2, 1, |_, _| Ok(())).bad.unwrap();
        assert_eq!(bad.problem, Problem::UnknownVersion(2));
        assert!(!bad.problem.may_be_torn());
    }

    #[test]
    fn valid_record_after_finds_a_later_record() {
        let buf = segment(1, 3);
        let first = read(&buf, 0).unwrap().total_len;
        let mut damaged = buf.clone();
        damaged[first + 3] ^= 0xff;
        assert!(valid_record_after(&damaged, first));
        // From the start of the last entry nothing valid follows.
        let mut last = 0;
        let mut off = 0;
        while off < buf.len() {
            last = off;
            off += read(&buf, off).unwrap().total_len;
        }
        assert!(!valid_record_after(&buf, last));
        assert!(valid_record_after(&buf, 0));
    }

    #[test]
    fn snapshot_round_trips_and_rejects_trailing_bytes() {
        let state = ClusterState::default();
        let mut bytes = snapshot(42, &state).unwrap();
        assert_eq!(read_snapshot(&bytes).unwrap(), (42, state));
        bytes.push(0);
        let (off, p) = read_snapshot(&bytes).unwrap_err();
        assert_eq!(p, Problem::TrailingBytes(1));
        assert_eq!(off, bytes.len() as u64 - 1);
    }
}

/// Fuzzing the decode paths of journal segments and snapshot files (disk input that a
/// crash, a bad disk or a person can damage): arbitrary bytes and single bit flips of
/// valid files. No input panics or allocates more than it holds; every bit flip of a
/// valid record is reported, never read back as another command. 10,000 cases each
/// (`PROPTEST_CASES` raises it for a long run).
#[cfg(test)]
mod fuzz {
    use super::*;
    use hearth_core::{ClusterState, Command, Millis, WorkerId};
    use proptest::prelude::*;

    fn cases() -> u32 {
        std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(10_000)
    }

    /// A valid segment of `n` entries starting at LSN 1.
    fn segment(n: u64) -> Vec<u8> {
        let mut buf = segment_header(1);
        for lsn in 1..=n {
            let cmd = Command::WorkerLost {
                worker: WorkerId::from("worker-1"),
                reason: format!("lost {lsn}"),
                at: Millis(lsn),
            };
            entry(&mut buf, lsn, &encode_command(&cmd));
        }
        buf
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512), lsn in 0u64..4) {
            let _ = read(&bytes, 0);
            let _ = read_snapshot(&bytes);
            let scan = scan_segment(&bytes, lsn, |_, _| Ok(()));
            prop_assert!(scan.valid_len <= bytes.len() as u64);
            let _ = valid_record_after(&bytes, 0);
        }

        #[test]
        fn a_valid_segment_with_random_garbage_appended_keeps_its_entries(
            tail in proptest::collection::vec(any::<u8>(), 1..256),
        ) {
            let mut buf = segment(3);
            let good = buf.len() as u64;
            buf.extend(&tail);
            let scan = scan_segment(&buf, 1, |_, _| Ok(()));
            prop_assert!(scan.entries >= 3 && scan.valid_len >= good);
        }

        #[test]
        fn every_bit_flip_of_a_valid_record_is_detected(bit in 0usize..4096) {
            let clean = segment(3);
            let bit = bit % (clean.len() * 8);
            let mut buf = clean.clone();
            buf[bit / 8] ^= 1 << (bit % 8);
            let mut seen = Vec::new();
            let scan = scan_segment(&buf, 1, |lsn, cmd| {
                seen.push((lsn, cmd));
                Ok(())
            });
            prop_assert!(scan.bad.is_some(), "flip of bit {} went unnoticed", bit);
            // What was read before the damage is exactly what was written.
            let mut expected = Vec::new();
            scan_segment(&clean, 1, |lsn, cmd| {
                expected.push((lsn, cmd));
                Ok(())
            });
            prop_assert_eq!(&seen[..], &expected[..seen.len()]);
        }

        #[test]
        fn every_bit_flip_of_a_snapshot_is_detected(bit in 0usize..8192) {
            let clean = snapshot(7, &ClusterState::default()).expect("snapshot");
            let bit = bit % (clean.len() * 8);
            let mut buf = clean;
            buf[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(read_snapshot(&buf).is_err(), "flip of bit {} went unnoticed", bit);
        }
    }
}
