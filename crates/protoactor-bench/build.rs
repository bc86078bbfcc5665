//! Compiles `bench/proto/bench.proto` (the remote workload's `Ping`/`Pong`, shared with the Go
//! program) with protox, so no system `protoc` is needed.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = "../../bench/proto";
    let file = "../../bench/proto/bench.proto";
    println!("cargo:rerun-if-changed={file}");
    let fds = protox::compile([file], [dir])?;
    let mut config = tonic_prost_build::Config::new();
    // `prost::Name` gives the proto full names (`protoactor_bench.Ping`) the remote
    // serializer registry sends on the wire.
    config.enable_type_names();
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(false)
        .compile_fds_with_config(fds, config)?;
    // The persistent-grains workload's grain: the bank example's service, persistent.
    protoactor_cluster_build::Builder::new()
        .persistent("bank.Account")
        .compile(
            &["../../examples/bank/proto/bank.proto"],
            &["../../examples/bank/proto"],
        )?;
    Ok(())
}
