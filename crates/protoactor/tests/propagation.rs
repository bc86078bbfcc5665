//! Middleware propagation: descendants inherit spawn, sender and receiver middleware and
//! context decorators (protoactor-go's `actor/middleware/propagator`).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{probe, Probe};
use protoactor::middleware::MiddlewarePropagation;
use protoactor::prelude::*;

/// A chain of actors: each spawns the next on `Started` until `depth` is reached; the
/// last one sends `"leaf"` to `sink`.
fn chain(depth: usize, sink: Pid) -> Props {
    Props::from_func(move |ctx| {
        if ctx.message().is::<Started>() {
            if depth > 1 {
                ctx.spawn_named(&chain(depth - 1, sink.clone()), "c")
                    .unwrap();
            } else {
                ctx.send(&sink, "leaf");
            }
        }
    })
}

/// A propagation recording what each middleware sees, tagged `tag`.
fn recording(tag: &'static str, p: Probe<String>) -> MiddlewarePropagation {
    let (pr, ps, pd) = (p.clone(), p.clone(), p);
    MiddlewarePropagation::new()
        .with_receiver_middleware(move |next: ReceiverFunc| -> ReceiverFunc {
            let p = pr.clone();
            Arc::new(move |ctx: &mut Context, env: MessageEnvelope| {
                p.push(format!(
                    "{tag} recv {} {}",
                    ctx.self_pid().id(),
                    env.message().type_name()
                ));
                next(ctx, env)
            })
        })
        .with_spawn_middleware(move |next: SpawnFunc| -> SpawnFunc {
            let p = ps.clone();
            Arc::new(
                move |system: &ActorSystem, id: &str, props: &Props, parent: Option<&Pid>| {
                    p.push(format!("{tag} spawn {id}"));
                    next(system, id, props, parent)
                },
            )
        })
        .with_sender_middleware(move |next: SenderFunc| -> SenderFunc {
            Arc::new(
                move |sc: &SenderContext<'_>, target: &Pid, mut env: MessageEnvelope| {
                    env.set_header("propagated-by", tag);
                    next(sc, target, env)
                },
            )
        })
        .with_context_decorator(
            move |ctx: &mut Context, next: &mut dyn FnMut(&mut Context)| {
                if ctx.message().is::<Started>() {
                    pd.push(format!("{tag} decorated {}", ctx.self_pid().id()));
                }
                next(ctx)
            },
        )
}

/// A sink reporting each string it gets with the `propagated-by` header.
fn sink(system: &ActorSystem, p: Probe<String>) -> Pid {
    system.root().spawn(&Props::from_func(move |ctx| {
        if let Some(s) = ctx.message_as::<&'static str>() {
            let by = ctx
                .header()
                .and_then(|h| h.get("propagated-by"))
                .unwrap_or("none");
            p.push(format!("sink {s} by {by}"));
        }
    }))
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// Four generations from one `with_propagated` at the root: every one receives, spawns,
/// sends and is decorated through the propagated middleware.
#[test]
fn propagation_reaches_depth_four() {
    let system = ActorSystem::new();
    let (p, rx) = probe::<String>();
    let (sp, srx) = probe::<String>();
    let sink = sink(&system, sp);
    let props = chain(4, sink).with_propagated(&recording("P", p));
    system.root().spawn_named(&props, "r").unwrap();
    assert_eq!(srx.next(), "sink leaf by P");
    let mut want = Vec::new();
    for id in ["r", "r/c", "r/c/c", "r/c/c/c"] {
        want.push(format!("P recv {id} protoactor::message::Started"));
        want.push(format!("P decorated {id}"));
    }
    for id in ["r/c", "r/c/c", "r/c/c/c"] {
        want.push(format!("P spawn {id}"));
    }
    assert_eq!(sorted(rx.take(want.len())), sorted(want));
    rx.assert_quiet(Duration::from_millis(100));
}

/// On a root context, the propagation's spawn middleware covers every actor it spawns
/// and their descendants (Go's `RootContext.WithSpawnMiddleware(propagator.SpawnMiddleware)`).
#[test]
fn root_context_spawn_middleware_propagates() {
    let system = ActorSystem::new();
    let (p, rx) = probe::<String>();
    let (sp, srx) = probe::<String>();
    let sink = sink(&system, sp);
    let root = system
        .root()
        .with_spawn_middleware(recording("R", p).spawn_middleware());
    root.spawn_named(&chain(3, sink), "q").unwrap();
    assert_eq!(srx.next(), "sink leaf by R");
    // the root context's own spawn of `q` configures it; the spawns below go through the
    // propagated spawn middleware
    let mut want = Vec::new();
    for id in ["q", "q/c", "q/c/c"] {
        want.push(format!("R recv {id} protoactor::message::Started"));
        want.push(format!("R decorated {id}"));
    }
    want.push("R spawn q/c".into());
    want.push("R spawn q/c/c".into());
    assert_eq!(sorted(rx.take(want.len())), sorted(want));
    rx.assert_quiet(Duration::from_millis(100));
}

/// A child adding its own middleware on top: its own runs outermost, the propagated one
/// still runs, and the child's own is not inherited by its children.
#[test]
fn child_adds_its_own_middleware_on_top() {
    let system = ActorSystem::new();
    let (p, rx) = probe::<String>();
    let (sp, srx) = probe::<String>();
    let sink = sink(&system, sp);
    let p_own = p.clone();
    let grandchild = chain(1, sink);
    let child = Props::from_func(move |ctx| {
        if ctx.message().is::<Started>() {
            ctx.spawn_named(&grandchild, "g").unwrap();
        }
    })
    .with_receiver_middleware(move |next: ReceiverFunc| -> ReceiverFunc {
        let p = p_own.clone();
        Arc::new(move |ctx: &mut Context, env: MessageEnvelope| {
            p.push(format!(
                "own recv {} {}",
                ctx.self_pid().id(),
                env.message().type_name()
            ));
            next(ctx, env)
        })
    });
    let parent = Props::from_func(move |ctx| {
        if ctx.message().is::<Started>() {
            ctx.spawn_named(&child, "c").unwrap();
        }
    })
    .with_propagated(&recording("P", p));
    system.root().spawn_named(&parent, "a").unwrap();
    assert_eq!(srx.next(), "sink leaf by P");
    let got = rx.take(9);
    let recv_c: Vec<_> = got.iter().filter(|e| e.contains(" recv a/c ")).collect();
    assert_eq!(
        recv_c,
        [
            "own recv a/c protoactor::message::Started",
            "P recv a/c protoactor::message::Started"
        ]
    );
    assert!(
        !got.iter().any(|e| e.starts_with("own recv a/c/g")),
        "{got:?}"
    );
    assert!(got.contains(&"P recv a/c/g protoactor::message::Started".to_string()));
    rx.assert_quiet(Duration::from_millis(100));
}

/// Props that already carry a propagation are not configured with it again when a
/// descendant spawns them: each middleware runs once per message.
#[test]
fn a_propagation_is_applied_once() {
    let system = ActorSystem::new();
    let (p, rx) = probe::<String>();
    let prop = recording("P", p);
    let leaf = Props::from_func(|_| {}).with_propagated(&prop);
    let parent = Props::from_func(move |ctx| {
        if ctx.message().is::<Started>() {
            ctx.spawn_named(&leaf, "l").unwrap();
        }
    })
    .with_propagated(&prop);
    system.root().spawn_named(&parent, "once").unwrap();
    let want = [
        "P decorated once",
        "P decorated once/l",
        "P recv once protoactor::message::Started",
        "P recv once/l protoactor::message::Started",
        "P spawn once/l",
    ];
    assert_eq!(sorted(rx.take(5)), want);
    rx.assert_quiet(Duration::from_millis(100));
}
