//! Compiles the cluster `.proto` files with protox (pure Rust, no system `protoc`). Their one
//! copy is the one `protoactor-cluster-build` bundles for users' `.proto` files (written to
//! `OUT_DIR/proto` here); `actor.proto` comes from the remote crate, and its types are reused
//! from there (`extern_path`), so an `actor.PID` inside a cluster message is the same Rust type
//! the remote layer encodes.
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
    println!("cargo:rerun-if-changed=../protoactor-remote/proto/actor.proto");
    let fds = protox::compile(
        &files,
        [include.as_path(), "../protoactor-remote/proto".as_ref()],
    )?;
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
    // the remote crate's `shared/messages.rs` (they are not part of either library).
    let shared = "../protoactor-remote/shared/messages.proto";
    println!("cargo:rerun-if-changed={shared}");
    let fds = protox::compile(
        [shared],
        ["../protoactor-remote/shared", "../protoactor-remote/proto"],
    )?;
    // No extern_path: the generated code names `super::actor::Pid`, which `messages.rs` maps
    // to the remote crate's `actor_proto` (as in the remote crate's own build).
    prost_build::Config::new()
        .enable_type_names()
        .compile_fds(fds)?;

    // Typed grains of the tests and of the `bank` example (only compiled where included);
    // `bank.Account` also as a persistent grain.
    protoactor_cluster_build::Builder::new()
        .persistent("bank.Account")
        .compile(
            &[
                "tests/protos/grainstest.proto",
                "examples/protos/bank.proto",
            ],
            &["tests/protos", "examples/protos"],
        )?;
    Ok(())
}
