//! Generates the `Account` grain of `proto/bank.proto` (messages, traits, kinds, client)
//! with protoactor-cluster-build, `Account` also in its persistent form: no system `protoc`.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    protoactor_cluster_build::Builder::new()
        .persistent("bank.Account")
        .compile(&["proto/bank.proto"], &["proto"])?;
    Ok(())
}
