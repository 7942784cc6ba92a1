//! Compiles `proto/hearth.proto` with the protoc binary shipped by `protoc-bin-vendored`,
//! so building hearth needs no system protoc.

use std::error::Error;

fn main() -> Result<(), Box<dyn Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let include = protoc_bin_vendored::include_path()?;

    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc);
    // Core keeps maps ordered (same iteration on every replica); so does the wire type.
    config.btree_map(["."]);

    let proto = "proto/hearth.proto";
    println!("cargo:rerun-if-changed={proto}");
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_with_config(
            config,
            &[proto],
            &[
                "proto",
                include.to_str().ok_or("non-UTF-8 protoc include path")?,
            ],
        )?;
    Ok(())
}
