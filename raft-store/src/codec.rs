//! The encoding of every value the Raft side stores or sends: a compact binary form
//! behind a one-byte marker, and plain JSON, which everything written before it used.
//!
//! [`encode`] writes [`COMPACT`] followed by the postcard 1.x encoding of the value.
//! [`decode`] reads that and, for any other first byte, JSON: a JSON document starts with
//! `{`, `[`, `"`, a digit, `-`, `t`, `f`, `n` or whitespace, never with `0x01`, so the two
//! can never be confused. Data dirs and peers from before the compact form keep working;
//! [`encode_json`] is there for a peer that only reads JSON (an older master during a
//! rolling upgrade).
//!
//! postcard is positional and not self-describing: a value decodes only as the type it was
//! encoded from, field for field. openraft is pinned (`=0.9.25`) and none of the types we
//! encode uses `skip_serializing_if`, `flatten`, `untagged` or internally tagged enums
//! (`tests/codec.rs` round-trips every one of them, each variant, through both forms).
//! hearth-core's `Command` and `ClusterState` are already held to postcard by the
//! FILESYSTEM journal (`core/tests/wire_format.rs`). A change to any of these types that
//! is not append-only must come with a new marker (`0x02`, ...), read beside this one.
//!
//! Decoding refuses garbage without panicking and without allocating what a length
//! prefix claims: postcard checks a string's or bytes' length against the input, and
//! serde caps what a sequence preallocates.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// The first byte of a compact (postcard) value.
pub const COMPACT: u8 = 0x01;

/// The two encodings [`decode`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// [`COMPACT`] + postcard.
    Compact,
    /// serde_json, as before the compact form.
    Json,
}

impl Format {
    /// The format of encoded `bytes` (JSON for anything not marked compact).
    pub fn of(bytes: &[u8]) -> Format {
        match bytes.first() {
            Some(&COMPACT) => Format::Compact,
            _ => Format::Json,
        }
    }
}

/// Why a value could not be encoded or decoded, naming the format.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("compact (postcard) encoding: {0}")]
    Compact(#[from] postcard::Error),
    #[error("compact (postcard) encoding: {0} bytes left over after the value")]
    Trailing(usize),
    #[error("JSON encoding: {0}")]
    Json(#[from] serde_json::Error),
}

/// Encodes `value` in the compact form: [`COMPACT`], then postcard.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    Ok(postcard::to_extend(value, vec![COMPACT])?)
}

/// Encodes `value` as plain JSON (the legacy form).
pub fn encode_json<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    Ok(serde_json::to_vec(value)?)
}

/// Encodes `value` in `format`.
pub fn encode_as<T: Serialize + ?Sized>(format: Format, value: &T) -> Result<Vec<u8>, CodecError> {
    match format {
        Format::Compact => encode(value),
        Format::Json => encode_json(value),
    }
}

/// Decodes a value in either form (see [`Format::of`]). A compact value must use all of
/// `bytes`.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    match bytes.split_first() {
        Some((&COMPACT, rest)) => {
            let (value, left) = postcard::take_from_bytes(rest)?;
            if !left.is_empty() {
                return Err(CodecError::Trailing(left.len()));
            }
            Ok(value)
        }
        _ => Ok(serde_json::from_slice(bytes)?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_is_marked_and_json_still_reads() {
        let v: (u64, String, Option<Vec<u32>>) = (300, "x".into(), Some(vec![1, 2]));
        let compact = encode(&v).unwrap();
        assert_eq!(compact[0], COMPACT);
        assert_eq!(Format::of(&compact), Format::Compact);
        assert_eq!(
            decode::<(u64, String, Option<Vec<u32>>)>(&compact).unwrap(),
            v
        );
        let json = encode_json(&v).unwrap();
        assert_eq!(Format::of(&json), Format::Json);
        assert_eq!(decode::<(u64, String, Option<Vec<u32>>)>(&json).unwrap(), v);
        for f in [Format::Compact, Format::Json] {
            assert_eq!(Format::of(&encode_as(f, &v).unwrap()), f);
        }
    }

    #[test]
    fn errors_name_the_format_that_failed() {
        let e = decode::<u64>(b"{nope").unwrap_err().to_string();
        assert!(e.starts_with("JSON encoding:"), "{e}");
        let e = decode::<String>(&[COMPACT, 5, b'a'])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("compact (postcard) encoding:"), "{e}");
        let e = decode::<u8>(&[COMPACT, 7, 7]).unwrap_err().to_string();
        assert_eq!(
            e,
            "compact (postcard) encoding: 1 bytes left over after the value"
        );
        let e = decode::<u8>(&[]).unwrap_err().to_string();
        assert!(e.starts_with("JSON encoding:"), "{e}");
    }

    #[test]
    fn no_json_document_starts_with_the_marker() {
        for doc in [
            "{}", "[]", "\"s\"", "0", "-1", "true", "false", "null", " 1", "\n{}",
        ] {
            assert_ne!(doc.as_bytes()[0], COMPACT, "{doc}");
            assert!(serde_json::from_slice::<serde_json::Value>(doc.as_bytes()).is_ok());
        }
        let mut marked = b"{}".to_vec();
        marked.insert(0, COMPACT);
        assert!(serde_json::from_slice::<serde_json::Value>(&marked).is_err());
    }

    #[test]
    fn a_huge_length_prefix_is_refused_without_allocating_it() {
        // varint 2^60: a Vec<u64>, a String and a Vec<u8> claiming that many elements.
        let mut huge = vec![COMPACT];
        huge.extend(postcard::to_stdvec(&(1u64 << 60)).unwrap());
        huge.extend([1, 2, 3]);
        assert!(decode::<Vec<u64>>(&huge).is_err());
        assert!(decode::<Vec<Vec<u8>>>(&huge).is_err());
        assert!(decode::<String>(&huge).is_err());
        assert!(decode::<Vec<u8>>(&huge).is_err());
        assert!(decode::<std::collections::BTreeMap<u64, String>>(&huge).is_err());
    }
}
