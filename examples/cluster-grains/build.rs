//! Generates the grains of `proto/hello.proto` (traits, kinds, clients and prost messages)
//! with protoactor-cluster-build: no system `protoc`.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    protoactor_cluster_build::compile(&["proto/hello.proto"], &["proto"])?;
    Ok(())
}
