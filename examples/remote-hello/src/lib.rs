//! The message types of the remote examples, generated from `proto/messages.proto` by
//! `build.rs`; the programs are in `src/bin/`.

/// Package `messages`.
pub mod messages {
    #![allow(missing_docs, clippy::all)]
    include!(concat!(env!("OUT_DIR"), "/messages.rs"));
}
