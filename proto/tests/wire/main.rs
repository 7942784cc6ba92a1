//! hearth-proto's tests, one binary: round trips core → pb → core, malformed input,
//! requests into commands, statuses (including over a real in-process gRPC call), and
//! filtered or paged status views with their `/json`.

mod commands;
mod fixtures;
mod malformed;
mod paging;
mod round_trip;
mod status;
