//! Compiles the `.proto` files with protox (pure Rust), so no system `protoc` is needed:
//! `proto/` (the library's wire types) and `shared/messages.proto` (the examples' and tests'
//! messages, which they include from `OUT_DIR`; not part of the library).
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/actor.proto",
        "proto/remote.proto",
        "shared/messages.proto",
    ];
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    // Where this crate's protos are, for dependents' build scripts (`links` in Cargo.toml):
    // the packaged crate ships both directories.
    let dir = std::env::var("CARGO_MANIFEST_DIR")?;
    println!("cargo:proto_dir={dir}/proto");
    println!("cargo:shared_dir={dir}/shared");
    let fds = protox::compile(files, ["proto", "shared"])?;
    tonic_prost_build::configure()
        // prost with a memory budget check of each received frame (src/frame.rs).
        .codec_path("crate::frame::BudgetCodec")
        .bytes(".remote.MessageEnvelope.message_data")
        .bytes(".remote.MessageBatch.targets")
        .type_attribute(
            ".messages",
            "#[derive(serde::Serialize, serde::Deserialize)] #[serde(rename_all = \"camelCase\", default)]",
        )
        // JSON field names as protobuf's JSON mapping (and Go's jsonpb) writes them.
        .type_attribute(
            ".actor.PID",
            "#[derive(serde::Serialize, serde::Deserialize)] #[serde(default)]",
        )
        .field_attribute(".actor.PID.Address", "#[serde(rename = \"Address\")]")
        .field_attribute(".actor.PID.Id", "#[serde(rename = \"Id\")]")
        .field_attribute(".actor.PID.request_id", "#[serde(rename = \"requestId\")]")
        .compile_fds_with_config(fds, {
            // `prost::Name` gives each message its proto full name for the serializer registry.
            let mut c = tonic_prost_build::Config::new();
            c.enable_type_names();
            c
        })?;
    Ok(())
}
