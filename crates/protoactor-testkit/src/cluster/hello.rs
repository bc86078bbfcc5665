//! The test grain of the cluster scenarios, the same on the Go side
//! (`interop/cmd/gocluster`): its messages, its props and the registry they need.

use protoactor::prelude::*;
use protoactor_cluster::{GrainContext, GrainErrorResponse, GrainRequest};
use protoactor_remote::Serialization;

/// `clustertest.HelloRequest` (interop/proto/clustertest.proto).
#[derive(Clone, PartialEq, prost::Message)]
pub struct HelloRequest {
    /// Who says hello.
    #[prost(string, tag = "1")]
    pub name: String,
}

impl prost::Name for HelloRequest {
    const NAME: &'static str = "HelloRequest";
    const PACKAGE: &'static str = "clustertest";
}

/// `clustertest.HelloResponse` (interop/proto/clustertest.proto).
#[derive(Clone, PartialEq, prost::Message)]
pub struct HelloResponse {
    /// `hello <name> from <kind>/<identity>`.
    #[prost(string, tag = "1")]
    pub message: String,
    /// The grain's kind.
    #[prost(string, tag = "2")]
    pub kind: String,
    /// The grain's identity.
    #[prost(string, tag = "3")]
    pub identity: String,
    /// The address of the member hosting the grain.
    #[prost(string, tag = "4")]
    pub address: String,
}

impl prost::Name for HelloResponse {
    const NAME: &'static str = "HelloResponse";
    const PACKAGE: &'static str = "clustertest";
}

/// The test kinds' grain: answers HelloRequest, directly or as GrainRequest method 0, with
/// its kind, identity and the member's address (as the Go members' grain does).
pub fn hello_props() -> Props {
    Props::from_func(|ctx| {
        let Some(ci) = ctx.cluster_identity() else {
            return;
        };
        let address = ctx.system().address();
        let hello = |req: &HelloRequest| HelloResponse {
            message: format!("hello {} from {}/{}", req.name, ci.kind, ci.identity),
            kind: ci.kind.clone(),
            identity: ci.identity.clone(),
            address: address.clone(),
        };
        if let Some(req) = ctx.message_as::<HelloRequest>() {
            let r = hello(req);
            ctx.respond(r);
        } else if let Some(g) = ctx.message_as::<GrainRequest>() {
            let reply = if g.method_index != 0 {
                Err(GrainErrorResponse::new(
                    "UNIMPLEMENTED",
                    format!("unknown method index {}", g.method_index),
                ))
            } else {
                g.decode_input::<HelloRequest>().map(|r| hello(&r))
            };
            match reply {
                Ok(r) => ctx.respond(r),
                Err(e) => ctx.respond(e),
            }
        }
    })
}

/// The registry of a test member: the cluster registers its own types; these are the
/// grain messages, the same on the Go side.
pub fn serialization() -> Serialization {
    let s = Serialization::new();
    s.register::<HelloRequest>();
    s.register::<HelloResponse>();
    s
}
