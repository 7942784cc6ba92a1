//! hearth-proto's tests, one binary: round trips core → pb → core, malformed input,
//! requests into commands, and statuses (including over a real in-process gRPC call).

mod commands;
mod fixtures;
mod malformed;
mod round_trip;
mod status;
