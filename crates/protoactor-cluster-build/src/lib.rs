//! # protoactor-cluster-build
//!
//! Generates typed Proto.Actor grains from the services of `.proto` files, for a user's
//! `build.rs`, with no system `protoc` (the files are compiled by [protox]). The grains are
//! call-compatible with protoactor-go's `protoc-gen-go-grain`: one `.proto` file serves a
//! cluster of Go and Rust members.
//!
//! ```no_run
//! // build.rs, in `fn main`:
//! protoactor_cluster_build::compile(&["protos/hello.proto"], &["protos"]).unwrap();
//! ```
//! ```ignore
//! // src/lib.rs (package `hello`)
//! pub mod hello {
//!     include!(concat!(env!("OUT_DIR"), "/hello.rs"));
//! }
//! ```
//!
//! The generated code uses the crates `prost`, `protoactor-cluster` and (for
//! `register_types`) `protoactor-remote`: the user's crate depends on them.
//!
//! For the messages, prost's code is generated with type names (`prost::Name`), and the
//! types of `actor.proto` and the cluster protos map to `protoactor_remote::actor_proto` and
//! `protoactor_cluster::proto`. Those files, and protoc-gen-go-grain's
//! `protobuf/protoc-gen-go-grain/options/options.proto` (the method options `reenterable`
//! and `future`, extension 50000), are on the include path already: a `.proto` file may
//! import them without copying them.
//!
//! For every service `S` (e.g. `service Hello`), in the package's module:
//!
//! * `trait Hello`: the grain a user implements, one method per unary rpc, taking the request
//!   and a `GrainCtx` and returning `Result<Response, GrainError>`. An rpc with the option
//!   `reenterable` gets a `Responder` instead and may answer later, after awaiting without
//!   blocking the grain (`ctx.reenter_after`); [`Builder::all_methods_reenterable`] gives every
//!   method that shape. Optional `init`, `terminate` and `receive_default`.
//! * `HELLO_KIND` = `"Hello"`, the kind name protoc-gen-go-grain gives (the service's Go
//!   name), `hello_kind(factory)` (the cluster `Kind`, with Go's 60 s idle timeout),
//!   `hello_kind_with_timeout(factory, timeout)` and `hello_props(factory, timeout)`.
//! * `HelloClient::new(&cluster, identity)`: one async method per rpc (`say_hello(req)`),
//!   a blocking form (`say_hello_blocking`), call options (`with_options`), and with the
//!   option `future` a boxed `'static` form for `reenter_after` (`say_hello_future`).
//!
//! * With [`Builder::persistent`] for the service: `trait HelloPersistent` (extends
//!   `protoactor_cluster::persistent::PersistentGrain`: events, `apply`, snapshots), whose
//!   methods take a `PersistentCtx` and persist events with `ctx.persist(event)`, and
//!   `hello_persistent_kind(store, factory)`; see `protoactor_cluster::persistent`.
//!
//! The method index on the wire is the rpc's position in the service: streaming rpcs are not
//! generated but keep their slot, as in Go. Per package: `register_types(&serialization)`
//! registers every message of the package with the remote serializer, and a top-level
//! `enum ErrorReason` gets `ErrorReason::error`/`ErrorReason::is` and one
//! `err_<value>`/`is_<value>` pair per value (Go's `Err<Value>`/`Is<Value>`).
//!
//! Over 700 lines: about 590 of code generation (one pass over a service, its client and
//! its kind), the rest its unit tests beside it.
//!
//! ## Features
//!
//! None: the crate is a build-time dependency with no options.

#![warn(missing_docs)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use heck::{ToSnakeCase, ToUpperCamelCase};
use prost_build::{Config, Method, Service, ServiceGenerator};
use prost_reflect::{DescriptorPool, Value};

/// The `.proto` files this crate puts on the include path: path → contents.
pub const BUNDLED_PROTOS: &[(&str, &str)] = &[
    ("actor.proto", include_str!("../proto/actor.proto")),
    ("cluster.proto", include_str!("../proto/cluster.proto")),
    ("gossip.proto", include_str!("../proto/gossip.proto")),
    ("grain.proto", include_str!("../proto/grain.proto")),
    ("pubsub.proto", include_str!("../proto/pubsub.proto")),
    (
        "protobuf/protoc-gen-go-grain/options/options.proto",
        include_str!("../proto/protobuf/protoc-gen-go-grain/options/options.proto"),
    ),
];

/// Compiles `protos` (looked up in `includes`, plus the bundled protos) into `OUT_DIR`:
/// prost's messages and the typed grains of every service. See the crate docs.
pub fn compile(protos: &[impl AsRef<Path>], includes: &[impl AsRef<Path>]) -> io::Result<()> {
    Builder::new().compile(protos, includes)
}

/// Writes the bundled protos under `dir` (created if needed) and returns it, for a
/// `protoc -I` or another generator.
pub fn write_include_dir(dir: &Path) -> io::Result<PathBuf> {
    for (name, text) in BUNDLED_PROTOS {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        // Rewriting an unchanged file would make cargo rerun dependents for nothing.
        if std::fs::read_to_string(&path).ok().as_deref() != Some(*text) {
            std::fs::write(&path, text)?;
        }
    }
    Ok(dir.to_path_buf())
}

/// The generator with its settings.
pub struct Builder {
    config: Config,
    out_dir: Option<PathBuf>,
    emit_rerun: bool,
    all_reenterable: bool,
    persistent: HashSet<String>,
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

impl Builder {
    /// Default settings: output to `OUT_DIR`, `cargo:rerun-if-changed` lines for the protos.
    pub fn new() -> Self {
        Builder {
            config: Config::new(),
            out_dir: None,
            emit_rerun: true,
            all_reenterable: false,
            persistent: HashSet::new(),
        }
    }

    /// Uses `config` for prost's code generation (attributes, `bytes`, ...). The extern paths
    /// of the actor and cluster protos, type names and the grain generator are added to it.
    pub fn prost_config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Writes the generated files to `dir` instead of `OUT_DIR`.
    pub fn out_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.out_dir = Some(dir.into());
        self
    }

    /// Gives every unary method the reenterable shape (it gets a
    /// `protoactor_cluster::Responder` and may answer after awaiting), as if each rpc had the
    /// option `reenterable`. Only the Rust grain trait changes: the wire is the same, so Go
    /// callers see no difference.
    pub fn all_methods_reenterable(mut self, yes: bool) -> Self {
        self.all_reenterable = yes;
        self
    }

    /// Also generates the persistent form of `service` (its proto name, `Account`, or full
    /// name, `bank.Account`): a `trait AccountPersistent` whose state is event-sourced by
    /// `protoactor_cluster::persistent` (recovered before the first request, events written
    /// before each reply, fenced on a conflicting write) and its kind
    /// `account_persistent_kind(store, factory)`. The wire stays the same (kind name, method
    /// indexes), so Go callers and the generated client see no difference. Needs the
    /// `persistence` feature of `protoactor-cluster` (on by default).
    pub fn persistent(mut self, service: impl Into<String>) -> Self {
        self.persistent.insert(service.into());
        self
    }

    /// Whether to print `cargo:rerun-if-changed` for the compiled files (default true).
    pub fn emit_rerun_if_changed(mut self, yes: bool) -> Self {
        self.emit_rerun = yes;
        self
    }

    /// Compiles `protos` (see [`compile`]).
    pub fn compile(
        mut self,
        protos: &[impl AsRef<Path>],
        includes: &[impl AsRef<Path>],
    ) -> io::Result<()> {
        let out_dir = match self.out_dir.take() {
            Some(d) => d,
            None => std::env::var_os("OUT_DIR")
                .map(PathBuf::from)
                .ok_or_else(|| {
                    io::Error::other("OUT_DIR is not set: call from build.rs or set out_dir")
                })?,
        };
        std::fs::create_dir_all(&out_dir)?;
        let bundled = write_include_dir(&out_dir.join("protoactor-protos"))?;
        let mut include_paths: Vec<PathBuf> =
            includes.iter().map(|p| p.as_ref().to_path_buf()).collect();
        include_paths.push(bundled);
        if self.emit_rerun {
            for p in protos {
                println!("cargo:rerun-if-changed={}", p.as_ref().display());
            }
        }

        let mut compiler = protox::Compiler::new(&include_paths).map_err(proto_error)?;
        compiler.include_imports(true);
        compiler
            .open_files(protos.iter().map(|p| p.as_ref()))
            .map_err(proto_error)?;
        let pool = compiler.descriptor_pool();
        let mut fds = compiler.file_descriptor_set();
        // Ours and the well-known types come from their crates (extern paths below).
        let bundled_names: HashSet<&str> = BUNDLED_PROTOS.iter().map(|(n, _)| *n).collect();
        fds.file.retain(|f| {
            let name = f.name();
            !bundled_names.contains(name) && !name.starts_with("google/protobuf/")
        });
        let user_files: HashSet<String> = fds.file.iter().map(|f| f.name().to_string()).collect();

        let mut services = describe_services(&pool, &user_files)?;
        if self.all_reenterable {
            for m in services.values_mut().flat_map(|s| s.methods.values_mut()) {
                m.reenterable = true;
            }
        }
        for (full, info) in services.iter_mut() {
            let short = full.rsplit('.').next().unwrap_or(full);
            info.persistent = self.persistent.contains(full) || self.persistent.contains(short);
        }
        let unknown: Vec<&String> = self
            .persistent
            .iter()
            .filter(|p| {
                !services
                    .keys()
                    .any(|full| full == *p || full.rsplit('.').next() == Some(p.as_str()))
            })
            .collect();
        if !unknown.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("persistent services not found in the compiled files: {unknown:?}"),
            ));
        }
        let packages = describe_packages(&pool, &user_files);

        self.config
            .extern_path(".actor", "::protoactor_remote::actor_proto")
            .extern_path(".cluster", "::protoactor_cluster::proto")
            .enable_type_names()
            .out_dir(&out_dir)
            .service_generator(Box::new(GrainGenerator { services }));
        self.config.compile_fds(fds)?;

        // Package-level items (registration, error reasons) exist also in packages without a
        // service, which prost's generator never visits: append them to the module files.
        for (package, info) in packages {
            let file = out_dir.join(if package.is_empty() {
                "_.rs".to_string()
            } else {
                format!("{package}.rs")
            });
            let mut text = std::fs::read_to_string(&file)?;
            text.push_str(&package_code(&info));
            std::fs::write(&file, text)?;
        }
        Ok(())
    }
}

fn proto_error(e: protox::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, e.to_string())
}

/// protoc-gen-go-grain's view of one rpc.
#[derive(Debug, Clone)]
struct MethodInfo {
    index: usize,
    streaming: bool,
    reenterable: bool,
    future: bool,
}

#[derive(Debug, Clone)]
struct ServiceInfo {
    /// The kind name: the service's Go name.
    kind: String,
    /// By proto method name.
    methods: HashMap<String, MethodInfo>,
    /// Generate the persistent form too.
    persistent: bool,
}

#[derive(Debug, Default)]
struct PackageInfo {
    /// Rust paths (relative to the package module) of every message.
    messages: Vec<String>,
    /// Value names of the top-level `enum ErrorReason`, if the package has one.
    error_reasons: Option<Vec<String>>,
}

fn describe_services(
    pool: &DescriptorPool,
    user_files: &HashSet<String>,
) -> io::Result<HashMap<String, ServiceInfo>> {
    let ext = pool.get_extension_by_name("options.method_options");
    let mut out = HashMap::new();
    for service in pool.services() {
        if !user_files.contains(service.parent_file().name()) {
            continue;
        }
        let mut methods = HashMap::new();
        for (index, m) in service.methods().enumerate() {
            let (mut reenterable, mut future) = (false, false);
            if let Some(ext) = &ext {
                let opts = m.options();
                if opts.has_extension(ext) {
                    if let Value::Message(o) = opts.get_extension(ext).as_ref() {
                        let flag = |name: &str| {
                            o.get_field_by_name(name)
                                .and_then(|v| v.as_bool())
                                .unwrap_or(false)
                        };
                        reenterable = flag("reenterable");
                        future = flag("future");
                    }
                }
            }
            methods.insert(
                m.name().to_string(),
                MethodInfo {
                    index,
                    streaming: m.is_client_streaming() || m.is_server_streaming(),
                    reenterable,
                    future,
                },
            );
        }
        out.insert(
            service.full_name().to_string(),
            ServiceInfo {
                kind: go_camel_case(service.name()),
                methods,
                persistent: false,
            },
        );
    }
    Ok(out)
}

fn describe_packages(
    pool: &DescriptorPool,
    user_files: &HashSet<String>,
) -> BTreeMap<String, PackageInfo> {
    let mut out: BTreeMap<String, PackageInfo> = BTreeMap::new();
    for file in pool.files() {
        if !user_files.contains(file.name()) {
            continue;
        }
        let info = out.entry(file.package_name().to_string()).or_default();
        for m in file.messages() {
            collect_messages(&m, "", &mut info.messages);
        }
        if let Some(e) = file.enums().find(|e| e.name() == "ErrorReason") {
            info.error_reasons = Some(e.values().map(|v| v.name().to_string()).collect());
        }
    }
    out
}

fn collect_messages(m: &prost_reflect::MessageDescriptor, prefix: &str, out: &mut Vec<String>) {
    if m.is_map_entry() {
        return;
    }
    out.push(format!("{prefix}{}", m.name().to_upper_camel_case()));
    let nested = format!("{prefix}{}::", m.name().to_snake_case());
    for n in m.child_messages() {
        collect_messages(&n, &nested, out);
    }
}

/// protoc-gen-go's `GoCamelCase`, which gives a service its Go name, and so a generated
/// grain its kind name: `hello_world` → `HelloWorld`, `hello` → `Hello`, `_x` → `X_x`'s
/// rules (an initial `_` becomes `X`).
pub fn go_camel_case(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next_lower = i + 1 < b.len() && b[i + 1].is_ascii_lowercase();
        if c == b'.' && next_lower {
            // ".x" drops the dot.
        } else if c == b'.' {
            out.push('_');
        } else if c == b'_' && (i == 0 || b[i - 1] == b'.') {
            out.push('X');
        } else if c == b'_' && next_lower {
            // "_x" drops the underscore (x is capitalised as a new word).
        } else if c.is_ascii_digit() {
            out.push(c as char);
        } else {
            out.push(c.to_ascii_uppercase() as char);
            while i + 1 < b.len() && b[i + 1].is_ascii_lowercase() {
                i += 1;
                out.push(b[i] as char);
            }
        }
        i += 1;
    }
    out
}

struct GrainGenerator {
    services: HashMap<String, ServiceInfo>,
}

const RT: &str = "::protoactor_cluster::grain";

impl ServiceGenerator for GrainGenerator {
    fn generate(&mut self, service: Service, buf: &mut String) {
        let full = if service.package.is_empty() {
            service.proto_name.clone()
        } else {
            format!("{}.{}", service.package, service.proto_name)
        };
        let Some(info) = self.services.get(&full) else {
            return;
        };
        buf.push_str(&service_code(&service, info));
    }
}

fn doc_lines(comments: &prost_build::Comments, indent: &str) -> String {
    let mut s = String::new();
    for line in comments.leading.iter().flat_map(|c| c.lines()) {
        let _ = writeln!(s, "{indent}///{}", line.trim_end());
    }
    s
}

fn service_code(service: &Service, info: &ServiceInfo) -> String {
    let name = &service.name;
    let snake = service.proto_name.to_snake_case();
    let upper = snake.to_uppercase();
    let kind = &info.kind;
    let methods: Vec<(&Method, &MethodInfo)> = service
        .methods
        .iter()
        .filter_map(|m| info.methods.get(&m.proto_name).map(|i| (m, i)))
        .filter(|(_, i)| !i.streaming)
        .collect();
    let mut s = String::new();
    let w = &mut s;

    let _ = writeln!(
        w,
        "/// The kind name of grains of service `{}` (protoc-gen-go-grain's name for it).",
        service.proto_name
    );
    let _ = writeln!(w, "pub const {upper}_KIND: &str = {kind:?};");

    // The trait.
    w.push_str(&doc_lines(&service.comments, ""));
    let _ = writeln!(
        w,
        "/// A grain of kind `{kind}`: implement it and host it with [`{snake}_kind`]; call it\n\
         /// with [`{name}Client`]."
    );
    let _ = writeln!(w, "pub trait {name}: Sized + Send + 'static {{");
    let _ = writeln!(
        w,
        "    /// Called when the grain is activated, before its first request.\n    \
         fn init(&mut self, _ctx: &mut {RT}::GrainCtx<'_, Self>) {{}}\n    \
         /// Called when the grain stops (idle timeout, shutdown).\n    \
         fn terminate(&mut self, _ctx: &mut {RT}::GrainCtx<'_, Self>) {{}}\n    \
         /// Any message that is not a `cluster.GrainRequest`.\n    \
         fn receive_default(&mut self, _ctx: &mut {RT}::GrainCtx<'_, Self>) {{}}"
    );
    for (m, i) in &methods {
        w.push_str(&doc_lines(&m.comments, "    "));
        if i.reenterable {
            let _ = writeln!(
                w,
                "    /// Reenterable: answer through `respond` (now, or later from a\n    \
                 /// `ctx.reenter_after` continuation); an `Err` returned here answers at once.\n    \
                 fn {}(&mut self, req: {}, ctx: &mut {RT}::GrainCtx<'_, Self>, respond: {RT}::Responder<{}>) -> ::core::result::Result<(), {RT}::GrainError>;",
                m.name, m.input_type, m.output_type
            );
        } else {
            let _ = writeln!(
                w,
                "    fn {}(&mut self, req: {}, ctx: &mut {RT}::GrainCtx<'_, Self>) -> ::core::result::Result<{}, {RT}::GrainError>;",
                m.name, m.input_type, m.output_type
            );
        }
    }
    w.push_str("}\n");

    // Kind and props.
    let _ = writeln!(
        w,
        "/// The cluster kind `{kind}` whose activations are made by `factory`, stopped after\n\
         /// Go's 60 s without a message.\n\
         pub fn {snake}_kind<T: {name}>(factory: impl Fn() -> T + Send + Sync + 'static) -> ::protoactor_cluster::Kind {{\n    \
         {snake}_kind_with_timeout(factory, {RT}::DEFAULT_IDLE_TIMEOUT)\n}}\n\
         /// The cluster kind `{kind}` with another idle timeout (zero: never idle-stopped).\n\
         pub fn {snake}_kind_with_timeout<T: {name}>(factory: impl Fn() -> T + Send + Sync + 'static, idle_timeout: ::core::time::Duration) -> ::protoactor_cluster::Kind {{\n    \
         ::protoactor_cluster::Kind::new({upper}_KIND, {snake}_props(factory, idle_timeout))\n}}\n\
         /// The props of a `{kind}` activation (to add middleware or a mailbox before\n\
         /// `Kind::new({upper}_KIND, props)`).\n\
         pub fn {snake}_props<T: {name}>(factory: impl Fn() -> T + Send + Sync + 'static, idle_timeout: ::core::time::Duration) -> {RT}::Props {{\n    \
         {RT}::grain_props({RT}::GrainService::<T> {{\n        \
         kind: {upper}_KIND,\n        \
         init: |g, c| g.init(c),\n        \
         terminate: |g, c| g.terminate(c),\n        \
         receive_default: |g, c| g.receive_default(c),\n        \
         dispatch: {snake}_dispatch::<T>,\n    \
         }}, factory, idle_timeout)\n}}"
    );
    let _ = writeln!(
        w,
        "#[allow(unused_variables)] // a service of streaming rpcs only has no arm\n\
         fn {snake}_dispatch<T: {name}>(grain: &mut T, ctx: &mut {RT}::GrainCtx<'_, T>, req: ::protoactor_cluster::GrainRequest) {{\n    \
         match req.method_index {{"
    );
    for (m, i) in &methods {
        let f = if i.reenterable {
            "handle_reenterable"
        } else {
            "handle"
        };
        let args = if i.reenterable {
            "|input, ctx, respond| grain.M(input, ctx, respond)"
        } else {
            "|input, ctx| grain.M(input, ctx)"
        }
        .replace('M', &m.name);
        let _ = writeln!(
            w,
            "        {} => {RT}::{f}::<T, {}, {}>(ctx, &req, {args}),",
            i.index, m.input_type, m.output_type
        );
    }
    let _ = writeln!(
        w,
        "        other => {RT}::unknown_method(ctx, {upper}_KIND, other),\n    }}\n}}"
    );

    if info.persistent {
        persistent_code(w, name, &snake, &upper, kind, &methods);
    }

    // The client.
    let _ = writeln!(
        w,
        "/// Calls grains of kind `{kind}` (Go or Rust members alike).\n\
         #[derive(Clone, Debug)]\n\
         pub struct {name}Client {{\n    \
         cluster: ::protoactor_cluster::Cluster,\n    \
         identity: ::std::string::String,\n    \
         options: ::protoactor_cluster::CallOptions,\n}}\n\
         impl {name}Client {{\n    \
         /// A client of grain `identity`, with the default call options.\n    \
         pub fn new(cluster: &::protoactor_cluster::Cluster, identity: impl ::core::convert::Into<::std::string::String>) -> Self {{\n        \
         {name}Client {{ cluster: cluster.clone(), identity: identity.into(), options: ::core::default::Default::default() }}\n    }}\n    \
         /// The same client with other call options (timeout, attempts, backoff).\n    \
         pub fn with_options(mut self, options: ::protoactor_cluster::CallOptions) -> Self {{\n        \
         self.options = options;\n        self\n    }}\n    \
         /// The grain's identity.\n    \
         pub fn identity(&self) -> &str {{\n        &self.identity\n    }}"
    );
    for (m, i) in &methods {
        w.push_str(&doc_lines(&m.comments, "    "));
        let _ = writeln!(
            w,
            "    /// Calls `{}` (method index {}).\n    \
             pub fn {}(&self, req: {}) -> impl ::core::future::Future<Output = ::core::result::Result<{}, {RT}::GrainError>> + Send + 'static {{\n        \
             {RT}::call(&self.cluster, &self.identity, {upper}_KIND, {RT}::GrainMethod {{ index: {}, name: \"{}\" }}, &req, &self.options)\n    }}\n    \
             /// Calls `{}`, blocking the calling thread.\n    \
             pub fn {}_blocking(&self, req: {}) -> ::core::result::Result<{}, {RT}::GrainError> {{\n        \
             {RT}::call_blocking(&self.cluster, &self.identity, {upper}_KIND, {RT}::GrainMethod {{ index: {}, name: \"{}\" }}, &req, &self.options)\n    }}",
            m.proto_name,
            i.index,
            m.name,
            m.input_type,
            m.output_type,
            i.index,
            m.proto_name,
            m.proto_name,
            m.name,
            m.input_type,
            m.output_type,
            i.index,
            m.proto_name,
        );
        if i.future {
            let _ = writeln!(
                w,
                "    /// Calls `{}` as a boxed `'static` future, e.g. for `ctx.reenter_after` in a grain.\n    \
                 pub fn {}_future(&self, req: {}) -> {RT}::GrainFuture<{}> {{\n        \
                 ::std::boxed::Box::pin(self.{}(req))\n    }}",
                m.proto_name, m.name, m.input_type, m.output_type, m.name
            );
        }
    }
    w.push_str("}\n");
    s
}

const PRT: &str = "::protoactor_cluster::persistent";

/// The persistent form of a service: its trait, kind, props and dispatch.
fn persistent_code(
    w: &mut String,
    name: &str,
    snake: &str,
    upper: &str,
    kind: &str,
    methods: &[(&Method, &MethodInfo)],
) {
    let _ = writeln!(
        w,
        "/// A persistent grain of kind `{kind}`: its state is recovered from its journal before its\n\
         /// first request and changed only by events (`ctx.persist(event)`), each method's events\n\
         /// durable before its reply. Host it with [`{snake}_persistent_kind`]; call it with\n\
         /// [`{name}Client`] (the wire is the plain kind's).\n\
         pub trait {name}Persistent: {PRT}::PersistentGrain {{"
    );
    for (m, i) in methods {
        w.push_str(&doc_lines(&m.comments, "    "));
        let _ = writeln!(
            w,
            "    /// Method index {}.\n    \
             fn {}(ctx: &mut {PRT}::PersistentCtx<'_, Self>, req: {}) -> ::core::result::Result<{}, {RT}::GrainError>;",
            i.index, m.name, m.input_type, m.output_type
        );
    }
    w.push_str("}\n");
    let _ = writeln!(
        w,
        "/// The persistent cluster kind `{kind}`: activations made by `factory`, journaled in\n\
         /// `store`, stopped after Go's 60 s without a message.\n\
         pub fn {snake}_persistent_kind<T: {name}Persistent>(store: {PRT}::GrainStore, factory: impl Fn() -> T + Send + Sync + 'static) -> ::protoactor_cluster::Kind {{\n    \
         {snake}_persistent_kind_with_timeout(store, factory, {RT}::DEFAULT_IDLE_TIMEOUT)\n}}\n\
         /// The persistent cluster kind `{kind}` with another idle timeout (zero: never).\n\
         pub fn {snake}_persistent_kind_with_timeout<T: {name}Persistent>(store: {PRT}::GrainStore, factory: impl Fn() -> T + Send + Sync + 'static, idle_timeout: ::core::time::Duration) -> ::protoactor_cluster::Kind {{\n    \
         ::protoactor_cluster::Kind::new({upper}_KIND, {snake}_persistent_props(store, factory, idle_timeout))\n}}\n\
         /// The props of a persistent `{kind}` activation.\n\
         pub fn {snake}_persistent_props<T: {name}Persistent>(store: {PRT}::GrainStore, factory: impl Fn() -> T + Send + Sync + 'static, idle_timeout: ::core::time::Duration) -> {RT}::Props {{\n    \
         {PRT}::persistent_props({PRT}::PersistentService::<T> {{ kind: {upper}_KIND, dispatch: {snake}_persistent_dispatch::<T> }}, store, factory, idle_timeout)\n}}\n\
         #[allow(unused_variables)] // a service of streaming rpcs only has no arm\n\
         fn {snake}_persistent_dispatch<T: {name}Persistent>(ctx: &mut {PRT}::PersistentCtx<'_, T>, req: ::protoactor_cluster::GrainRequest) {{\n    \
         match req.method_index {{"
    );
    for (m, i) in methods {
        let _ = writeln!(
            w,
            "        {} => {PRT}::handle::<T, {}, {}>(ctx, &req, |ctx, input| <T as {name}Persistent>::{}(ctx, input)),",
            i.index, m.input_type, m.output_type, m.name
        );
    }
    let _ = writeln!(
        w,
        "        other => {PRT}::unknown_method(ctx, {upper}_KIND, other),\n    }}\n}}"
    );
}

fn package_code(info: &PackageInfo) -> String {
    let mut s = String::new();
    let w = &mut s;
    let _ = writeln!(
        w,
        "/// Registers every message of this package with the remote serializer (needed before\n\
         /// they cross the network, as requests or replies).\n\
         #[allow(unused_variables)] // a package without messages\n\
         pub fn register_types(serialization: &::protoactor_cluster::grain::Serialization) {{"
    );
    for m in &info.messages {
        let _ = writeln!(w, "    serialization.register::<{m}>();");
    }
    w.push_str("}\n");
    if let Some(values) = &info.error_reasons {
        let _ = writeln!(
            w,
            "impl ErrorReason {{\n    \
             /// A grain error with this reason (the value's proto name, as Go's `Err<Value>`).\n    \
             pub fn error(self, message: impl ::core::convert::Into<::std::string::String>) -> {RT}::GrainError {{\n        \
             {RT}::GrainError::new(self.as_str_name(), message)\n    }}\n    \
             /// True if `err` has this reason (Go's `Is<Value>`).\n    \
             pub fn is(self, err: &{RT}::GrainError) -> bool {{\n        \
             err.reason == self.as_str_name()\n    }}\n}}"
        );
        for v in values {
            let snake = v.to_snake_case();
            let variant = v.to_upper_camel_case();
            let _ = writeln!(
                w,
                "/// A grain error with reason `{v}` (Go: `Err{variant}`).\n\
                 pub fn err_{snake}(message: impl ::core::convert::Into<::std::string::String>) -> {RT}::GrainError {{\n    \
                 {RT}::GrainError::new({v:?}, message)\n}}\n\
                 /// True if `err` has reason `{v}` (Go: `Is{variant}`).\n\
                 pub fn is_{snake}(err: &{RT}::GrainError) -> bool {{\n    \
                 err.reason == {v:?}\n}}"
            );
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_names_of_services() {
        for (proto, go) in [
            ("Hello", "Hello"),
            ("hello", "Hello"),
            ("hello_world", "HelloWorld"),
            ("HelloWorld", "HelloWorld"),
            ("_hidden", "XHidden"),
            ("user2fa", "User2Fa"),
            ("a_b_c", "ABC"),
            ("snake_Case", "Snake_Case"),
        ] {
            assert_eq!(go_camel_case(proto), go, "{proto}");
        }
    }

    /// The bundled `actor.proto` must stay the remote crate's (the cluster protos have no
    /// other copy: the cluster crate compiles these).
    #[test]
    fn bundled_protos_are_the_crates_protos() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        for (name, text) in BUNDLED_PROTOS {
            let source = match *name {
                "actor.proto" => root.join("protoactor-remote/proto/actor.proto"),
                _ => continue,
            };
            let Ok(original) = std::fs::read_to_string(&source) else {
                continue; // packaged crate: the sources are not beside it
            };
            assert_eq!(&original, text, "{name} differs from {}", source.display());
        }
    }

    fn generate(proto: &str) -> io::Result<String> {
        generate_with(Builder::new(), proto)
    }

    fn generate_with(builder: Builder, proto: &str) -> io::Result<String> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("t.proto"), proto)?;
        builder
            .out_dir(dir.path().join("out"))
            .emit_rerun_if_changed(false)
            .compile(&[dir.path().join("t.proto")], &[dir.path()])?;
        std::fs::read_to_string(dir.path().join("out/t.rs"))
    }

    #[test]
    fn streaming_rpcs_keep_their_slot_and_options_are_read() {
        let code = generate(
            r#"syntax = "proto3"; package t;
            import "protobuf/protoc-gen-go-grain/options/options.proto";
            message A {} message B {}
            service my_svc {
              rpc One(A) returns (B);
              rpc Stream(A) returns (stream B);
              rpc Three(A) returns (B) { option (options.method_options).reenterable = true; }
              rpc Four(A) returns (B) { option (options.method_options).future = true; }
            }"#,
        )
        .unwrap();
        // prettyplease formats the output: compare without whitespace.
        let code: String = code.split_whitespace().collect();
        let has = |s: &str| code.contains(&s.split_whitespace().collect::<String>());
        assert!(has("pub const MY_SVC_KIND: &str = \"MySvc\";"), "{code}");
        assert!(
            has("0 => { ::protoactor_cluster::grain::handle::<T, A, B,"),
            "{code}"
        );
        assert!(!has("fn stream("), "streaming rpcs are not generated");
        assert!(has(
            "2 => { ::protoactor_cluster::grain::handle_reenterable::<T, A, B,"
        ));
        assert!(has("3 => { ::protoactor_cluster::grain::handle::<T, A, B,"));
        assert!(!has("1 => {"), "the streaming slot is not dispatched");
        assert!(has("pub fn four_future("));
        assert!(!has("pub fn one_future("));
        assert!(has("serialization.register::<A>();"));
    }

    #[test]
    fn every_method_may_be_made_reenterable() {
        let proto = r#"syntax = "proto3"; package t; message A {}
            service S { rpc One(A) returns (A); }"#;
        let plain: String = generate(proto).unwrap().split_whitespace().collect();
        assert!(plain.contains("::protoactor_cluster::grain::handle::<T,A,A,>"));
        let all = generate_with(Builder::new().all_methods_reenterable(true), proto).unwrap();
        let all: String = all.split_whitespace().collect();
        assert!(all.contains("::protoactor_cluster::grain::handle_reenterable::<T,A,A,>"));
        assert!(all.contains("respond:::protoactor_cluster::grain::Responder<A>"));
    }

    #[test]
    fn persistent_services_get_a_second_trait_and_kind_with_the_same_indexes() {
        let proto = r#"syntax = "proto3"; package t; message A {} message B {}
            service Plain { rpc One(A) returns (B); }
            service Store { rpc Put(A) returns (B); rpc Watch(A) returns (stream B); rpc Get(A) returns (B); }"#;
        let code = generate_with(Builder::new().persistent("t.Store"), proto).unwrap();
        let code: String = code.split_whitespace().collect();
        let has = |s: &str| code.contains(&s.split_whitespace().collect::<String>());
        assert!(has(
            "pub trait StorePersistent: ::protoactor_cluster::persistent::PersistentGrain"
        ));
        assert!(has("pub fn store_persistent_kind<T: StorePersistent>("));
        assert!(has(
            "0 => { ::protoactor_cluster::persistent::handle::<T, A, B,"
        ));
        // The streaming rpc keeps its slot: `Get` is index 2, as on the plain kind.
        assert!(has(
            "2 => { ::protoactor_cluster::persistent::handle::<T, A, B,"
        ));
        assert!(has("<T as StorePersistent>::get(ctx, input)"));
        assert!(has("pub trait Store:"), "the plain form stays");
        assert!(!has("PlainPersistent"), "only the services asked for");
        // A short name works too; a name that is no service is an error.
        let short = generate_with(Builder::new().persistent("Store"), proto).unwrap();
        assert!(short.contains("StorePersistent"));
        let e = generate_with(Builder::new().persistent("Nope"), proto).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("Nope"), "{e}");
    }

    /// A file with only an `ErrorReason` enum has no service, which prost's service
    /// generator never visits: the helpers are still generated (as Go's generator does).
    #[test]
    fn error_reasons_without_services() {
        let code = generate(
            r#"syntax = "proto3"; package t;
            enum ErrorReason { USER_NOT_FOUND = 0; TOO_MANY_REQUESTS = 1; }"#,
        )
        .unwrap();
        for item in [
            "pub fn err_user_not_found(",
            "pub fn is_too_many_requests(",
            "GrainError::new(\"TOO_MANY_REQUESTS\", message)",
            "pub fn register_types(",
        ] {
            assert!(code.contains(item), "no {item} in {code}");
        }
    }

    #[test]
    fn bad_protos_are_errors() {
        let e = generate("syntax = \"proto3\"; message A { nope x = 1; }").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("nope"), "{e}");
    }
}
