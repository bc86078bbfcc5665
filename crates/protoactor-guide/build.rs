//! The typed grain of the cluster chapter: generated from `proto/hello.proto` exactly as a
//! user's build script does it.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    protoactor_cluster_build::compile(&["proto/hello.proto"], &["proto"])?;
    Ok(())
}
