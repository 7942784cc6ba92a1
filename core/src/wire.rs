//! The serialized form of the records that embed a [`WorkerIdentity`](crate::WorkerIdentity).
//!
//! [`WorkerRegistration`](crate::WorkerRegistration) (inside `Command::RegisterWorker`)
//! and [`WorkerInfo`](crate::WorkerInfo) (inside `ClusterState`) held the identity's six
//! fields themselves before it was a type of its own, and data dirs hold them in that
//! form: the FILESYSTEM journal and snapshots by position (postcard, recovery/FORMAT.md
//! §2), the Raft log, Raft snapshots and the export document as JSON objects. So they
//! keep it: the identity's fields inline and first. A nested `identity` object would
//! change the JSON, and `#[serde(flatten)]` cannot be encoded by postcard at all.
//! `tests/wire_format.rs` pins both encodings.

/// Declares `mod wire` holding `$record`'s serialized form, `wire::$record`: the
/// identity's fields, then `$record`'s own fields as listed (every field but `identity`,
/// in declaration order), with conversions both ways. The record then derives serde with
/// `#[serde(from = "wire::Record", into = "wire::Record")]`.
///
/// The listed types are resolved in the calling module. A field added to the record must
/// be listed too, last (the conversions do not compile until it is).
macro_rules! identity_inline {
    ($record:ident { $($field:ident: $ty:ty),+ $(,)? }) => {
        mod wire {
            #[allow(unused_imports)] // a record may list only std types
            use super::*;

            #[derive(serde::Serialize, serde::Deserialize)]
            pub(super) struct $record {
                id: $crate::WorkerId,
                host: String,
                port: u16,
                http_port: u16,
                cores: u32,
                memory_mb: u64,
                $($field: $ty),+
            }

            impl From<super::$record> for $record {
                fn from(r: super::$record) -> Self {
                    let $crate::WorkerIdentity {
                        id,
                        host,
                        port,
                        http_port,
                        cores,
                        memory_mb,
                    } = r.identity;
                    $record {
                        id,
                        host,
                        port,
                        http_port,
                        cores,
                        memory_mb,
                        $($field: r.$field),+
                    }
                }
            }

            impl From<$record> for super::$record {
                fn from(r: $record) -> Self {
                    let identity = $crate::WorkerIdentity {
                        id: r.id,
                        host: r.host,
                        port: r.port,
                        http_port: r.http_port,
                        cores: r.cores,
                        memory_mb: r.memory_mb,
                    };
                    super::$record {
                        identity,
                        $($field: r.$field),+
                    }
                }
            }
        }
    };
}
pub(crate) use identity_inline;
