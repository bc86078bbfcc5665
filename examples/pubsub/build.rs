//! Generates the messages of `proto/news.proto` (prost, with their protobuf full names)
//! with protoactor-cluster-build: no system `protoc`.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    protoactor_cluster_build::compile(&["proto/news.proto"], &["proto"])?;
    Ok(())
}
