//! For build scripts that compile your own `.proto` files which `import "actor.proto"` (to
//! carry `actor.PID`s) or `"remote.proto"`: the directory holding those files, and the
//! `prost-build` settings that make the generated code use this crate's types and give every
//! message its proto full name (what [`Serialization::register`](crate::Serialization::register)
//! needs).
//!
//! With the `build` feature, one call in `build.rs` does it all (protox compiles the files in
//! pure Rust, no `protoc` needed):
//!
//! ```toml
//! [dependencies]
//! protoactor-remote = "0.1"
//! prost = "0.14"
//!
//! [build-dependencies]
//! protoactor-remote = { version = "0.1", features = ["build"] }
//! ```
//!
//! ```no_run
//! // build.rs
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     # #[cfg(feature = "build")]
//!     protoactor_remote::build::compile_protos(&["proto/greeting.proto"], &["proto"])?;
//!     Ok(())
//! }
//! ```
//!
//! and in the crate: `include!(concat!(env!("OUT_DIR"), "/greeting.rs"));` (one file per
//! proto package). `examples/user-protos` in this repository is a complete crate doing this.
//!
//! Without the feature, pass [`PROTO_INCLUDE_DIR`] as an include path and apply
//! [`EXTERN_PATHS`] and `enable_type_names()` to your own `prost_build::Config`.

/// The directory holding `actor.proto` and `remote.proto` (protoactor-go's wire protocol).
pub const PROTO_INCLUDE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/proto");

/// `(proto package, Rust path)` pairs for `prost_build::Config::extern_path`, so that generated
/// code uses this crate's `actor` and `remote` types instead of generating its own copies.
pub const EXTERN_PATHS: &[(&str, &str)] = &[
    (".actor", "::protoactor_remote::actor_proto"),
    (".remote", "::protoactor_remote::remote_proto"),
];

/// Applies [`EXTERN_PATHS`] and `enable_type_names` to a `prost_build::Config`.
#[cfg(feature = "build")]
pub fn configure(config: &mut prost_build::Config) -> &mut prost_build::Config {
    for (proto, rust) in EXTERN_PATHS {
        config.extern_path(*proto, *rust);
    }
    config.enable_type_names()
}

/// Compiles `protos` (searched in `includes`, then in [`PROTO_INCLUDE_DIR`]) into `OUT_DIR`
/// with protox and prost-build, configured by [`configure`]; tells cargo to rerun the build
/// script when one of them changes.
#[cfg(feature = "build")]
pub fn compile_protos(
    protos: &[impl AsRef<std::path::Path>],
    includes: &[impl AsRef<std::path::Path>],
) -> Result<(), Box<dyn std::error::Error>> {
    let mut dirs: Vec<std::path::PathBuf> =
        includes.iter().map(|d| d.as_ref().to_path_buf()).collect();
    dirs.push(PROTO_INCLUDE_DIR.into());
    for p in protos {
        println!("cargo:rerun-if-changed={}", p.as_ref().display());
    }
    let fds = protox::compile(protos, &dirs)?;
    configure(&mut prost_build::Config::new()).compile_fds(fds)?;
    Ok(())
}
