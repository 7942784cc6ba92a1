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
    // The descriptor set lets tests list every rpc of every service (so a new one is
    // covered by the authentication test without anyone remembering to add it).
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("hearth_descriptor.bin"))
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
