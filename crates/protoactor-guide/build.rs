//! The typed grains of the cluster and persistent-grains chapters: generated from `proto/`
//! exactly as a user's build script does it.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    protoactor_cluster_build::compile(&["proto/hello.proto"], &["proto"])?;
    // `Counter` also in its persistent form (`CounterPersistent`, `counter_persistent_kind`).
    protoactor_cluster_build::Builder::new()
        .persistent("counter.Counter")
        .compile(&["proto/counter.proto"], &["proto"])?;
    Ok(())
}
