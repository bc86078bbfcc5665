//! Compiles `proto/greeting.proto`, which imports protoactor's `actor.proto`: the include
//! path, the `extern_path` to `protoactor_remote`'s `actor` types and the proto full names
//! all come from one call.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    protoactor_remote::build::compile_protos(&["proto/greeting.proto"], &["proto"])
}
