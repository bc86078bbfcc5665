//! Compiles the cluster `.proto` files with protox (pure Rust, no system `protoc`). Their one
//! copy is the one `protoactor-cluster-build` bundles for users' `.proto` files (written to
//! `OUT_DIR/proto` here), `actor.proto` included (that crate's test keeps it the remote
//! crate's); its types are reused from the remote crate (`extern_path`), so an `actor.PID`
//! inside a cluster message is the same Rust type the remote layer encodes. The tests'
//! messages come from the remote crate's package (`links` metadata), so nothing is read by a
//! path outside this crate and the packaged crate builds.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    let include = protoactor_cluster_build::write_include_dir(&out.join("proto"))?;
    let files = [
        "cluster.proto",
        "gossip.proto",
        "grain.proto",
        "pubsub.proto",
    ]
    .map(|f| include.join(f));
    let fds = protox::compile(&files, [include.as_path()])?;
    let mut config = prost_build::Config::new();
    config
        .extern_path(".actor", "::protoactor_remote::actor_proto")
        // `prost::Name` gives each message its proto full name for the serializer registry,
        // and the type URL Go's `anypb.New` writes (`type.googleapis.com/cluster.X`).
        .enable_type_names()
        .type_name_domain([".cluster"], "type.googleapis.com");
    config.compile_fds(fds)?;

    // The remote crate's test messages (`messages.HelloRequest`, ...), which the Go
    // interop programs also know; the tests include them from `OUT_DIR` through
    // the remote crate's `shared/messages.rs` (they are not part of either library). The
    // remote crate says where its package has them (`links = "protoactor_remote"`).
    let shared_dir = std::path::PathBuf::from(std::env::var("DEP_PROTOACTOR_REMOTE_SHARED_DIR")?);
    let shared = shared_dir.join("messages.proto");
    println!("cargo:rerun-if-changed={}", shared.display());
    let fds = protox::compile([&shared], [&shared_dir, &include])?;
    // No extern_path: the generated code names `super::actor::Pid`, which `messages.rs` maps
    // to the remote crate's `actor_proto` (as in the remote crate's own build).
    prost_build::Config::new()
        .enable_type_names()
        .compile_fds(fds)?;

    // Typed grains of the tests (only compiled where included); `counter_service` also as
    // a persistent grain (Go's generated clients call it in `grains_interop`) when the
    // `persistence` feature provides the runtime.
    let mut grains = protoactor_cluster_build::Builder::new();
    if std::env::var_os("CARGO_FEATURE_PERSISTENCE").is_some() {
        grains = grains.persistent("grainstest.counter_service");
    }
    grains.compile(&["tests/protos/grainstest.proto"], &["tests/protos"])?;
    Ok(())
}
