//! Compiles `proto/messages.proto` (which imports protoactor's `actor.proto`) with protox:
//! no system `protoc`.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    protoactor_remote::build::compile_protos(&["proto/messages.proto"], &["proto"])
}
