//! Futures: request_future with wait/result/await, timeouts, dead letters, pipe_to, and
//! reenter_after.

mod common;

use std::time::Duration;

use common::{probe, WAIT};
use protoactor::prelude::*;

fn echo() -> Props {
    Props::from_func(|ctx| {
        if let Some(n) = ctx.message_as::<u32>() {
            ctx.respond(*n);
        }
    })
}

#[test]
fn success_timeout_and_dead_letter() {
    let system = ActorSystem::new();
    let pid = system.root().spawn(&echo());
    let ok = system.root().request_future(&pid, 7u32, WAIT);
    assert_eq!(ok.result_as::<u32>(), Ok(7));

    let silent = system.root().spawn(&Props::from_func(|_| {}));
    let f = system
        .root()
        .request_future(&silent, 1u32, Duration::from_millis(50));
    assert!(f.wait().is_err_and(|e| e.is_timeout()));
    // The error names the target, the message type and the timeout.
    let err = f.result().unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("request to {silent} (u32) timed out after 50ms")
    );
    let request = err.request().expect("a timeout names its request");
    assert_eq!(request.target.as_ref(), Some(&silent));
    assert_eq!(request.timeout, Some(Duration::from_millis(50)));

    system.root().stop_future(&pid).wait().unwrap();
    let dead = system.root().request_future(&pid, Ping(1), WAIT);
    let err = dead.result_as::<u32>().unwrap_err();
    assert!(err.is_dead_letter(), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("request to {pid} (futures::Ping) went to dead letters: the target does not exist")
    );

    // A future not made by a request names itself.
    let bare = ActorFuture::new(&system, Duration::from_millis(1));
    let err = bare.result().unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "future {} timed out after 1ms",
            err.request().unwrap().future
        )
    );
}

struct Ping(#[allow(dead_code)] u32);

#[test]
fn wrong_type_is_a_clear_error() {
    let system = ActorSystem::new();
    let pid = system.root().spawn(&echo());
    let r = system
        .root()
        .request_future(&pid, 7u32, WAIT)
        .result_as::<String>();
    assert!(
        matches!(r, Err(FutureError::UnexpectedType { actual: "u32", .. })),
        "{r:?}"
    );
}

#[test]
fn a_future_without_timeout_waits_for_its_response() {
    let system = ActorSystem::new();
    let (late_tx, late_rx) = std::sync::mpsc::channel::<Pid>();
    let late_tx = std::sync::Mutex::new(late_tx);
    // holds requests and answers only when told
    let holder = system.root().spawn(&Props::from_func(move |ctx| {
        if ctx.message().is::<u32>() {
            late_tx
                .lock()
                .unwrap()
                .send(ctx.sender().unwrap().clone())
                .unwrap();
        }
    }));
    let f = system
        .root()
        .request_future(&holder, 1u32, ActorFuture::NO_TIMEOUT);
    let reply_to = late_rx.recv_timeout(WAIT).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert!(!f.is_done());
    system.root().send(&reply_to, "late".to_string());
    assert_eq!(f.result_as::<String>().unwrap(), "late");
}

#[tokio::test(flavor = "current_thread")]
async fn futures_can_be_awaited_from_any_runtime() {
    let system = ActorSystem::new();
    let pid = system.root().spawn(&echo());
    let r = system
        .root()
        .request_future(&pid, 5u32, WAIT)
        .await
        .unwrap();
    assert_eq!(r.downcast_ref::<u32>(), Some(&5));
    let typed = system
        .root()
        .request_future(&pid, 6u32, WAIT)
        .into_typed::<u32>()
        .await;
    assert_eq!(typed, Ok(6));
    system.shutdown();
}

/// `.await` keeps the timeout whoever polls it: a tokio runtime other than the system's, or
/// an executor that is not tokio at all (the timer belongs to the system's runtime).
#[test]
fn an_awaited_future_times_out_on_any_executor() {
    let system = ActorSystem::new();
    let silent = system.root().spawn(&Props::from_func(|_| {}));
    let pid = system.root().spawn(&echo());
    let short = Duration::from_millis(30);
    let r = futures::executor::block_on(system.root().request_future(&silent, 1u32, short));
    assert!(r.err().is_some_and(|e| e.is_timeout()));
    let r = futures::executor::block_on(system.root().request_future(&pid, 2u32, WAIT));
    assert_eq!(
        r.ok().and_then(|m| m.downcast_ref::<u32>().copied()),
        Some(2)
    );
    let other = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime without a timer of its own");
    let r = other.block_on(system.root().request_future(&silent, 3u32, short));
    assert!(r.err().is_some_and(|e| e.is_timeout()));
    system.shutdown();
}

#[test]
fn pipe_to_forwards_results_and_errors() {
    let system = ActorSystem::new();
    let (p, rx) = probe::<String>();
    let sink = system.root().spawn(&Props::from_func(move |ctx| {
        if let Some(n) = ctx.message_as::<u32>() {
            p.push(format!("value {n}"));
        } else if let Some(e) = ctx.message_as::<FutureError>() {
            p.push(format!("error {e}"));
        }
    }));
    let pid = system.root().spawn(&echo());
    system
        .root()
        .request_future(&pid, 3u32, WAIT)
        .pipe_to(&sink);
    assert_eq!(rx.next(), "value 3");
    let silent = system.root().spawn(&Props::from_func(|_| {}));
    system
        .root()
        .request_future(&silent, 3u32, Duration::from_millis(20))
        .pipe_to(&sink);
    assert_eq!(
        rx.next(),
        format!("error request to {silent} (u32) timed out after 20ms")
    );
}

#[test]
fn request_from_an_actor_sets_the_sender() {
    let system = ActorSystem::new();
    let (p, rx) = probe::<String>();
    let echo = system.root().spawn(&echo());
    system.root().spawn(&Props::from_func(move |ctx| {
        if ctx.message().is::<Started>() {
            ctx.request(&echo, 11u32);
        } else if let Some(n) = ctx.message_as::<u32>() {
            p.push(format!("reply {n} from {}", ctx.sender().is_some()));
        }
    }));
    assert_eq!(rx.next(), "reply 11 from false");
}

#[test]
fn reenter_after_resumes_with_the_original_message_while_other_messages_flow() {
    struct Asker {
        log: common::Probe<String>,
    }
    impl Actor for Asker {
        fn receive(&mut self, ctx: &mut Context) {
            if let Some(s) = ctx.message_as::<String>() {
                let original = s.clone();
                if original == "ask" {
                    let slow = async {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        42u32
                    };
                    ctx.reenter_after(slow, |me: &mut Asker, ctx, n| {
                        let restored = ctx.message_as::<String>().cloned().unwrap_or_default();
                        me.log.push(format!("continued with {restored} and {n}"));
                    });
                } else {
                    self.log.push(format!("handled {original}"));
                }
            }
        }
    }
    let system = ActorSystem::new();
    let (p, rx) = probe();
    let pid = system
        .root()
        .spawn(&Props::from_producer(move || Asker { log: p.clone() }));
    system.root().send(&pid, "ask".to_string());
    system.root().send(&pid, "meanwhile".to_string());
    assert_eq!(rx.next(), "handled meanwhile");
    assert_eq!(rx.next(), "continued with ask and 42");
}

#[test]
fn reenter_after_an_actor_future_for_closure_actors() {
    let system = ActorSystem::new();
    let (p, rx) = probe::<String>();
    let echo = system.root().spawn(&echo());
    let asker = system.root().spawn(&Props::from_func(move |ctx| {
        if let Some(n) = ctx.message_as::<u64>() {
            let n = *n;
            let fut = ctx.request_future(&echo, n as u32 * 2, WAIT);
            let p = p.clone();
            ctx.reenter_after_with_context(fut, move |ctx, r| {
                let v = r.ok().and_then(|m| m.downcast_ref::<u32>().copied());
                p.push(format!("{:?} for {:?}", v, ctx.message_as::<u64>()));
            });
        }
    }));
    system.root().send(&asker, 21u64);
    assert_eq!(rx.next(), "Some(42) for Some(21)");
}

#[test]
fn a_reply_after_the_deadline_is_a_timeout_and_a_dead_letter() {
    // Nobody waits while the deadline passes (so no timer ran); the late reply must still
    // not count as a success, and it must not vanish.
    let system = ActorSystem::new();
    let (p, rx) = probe();
    let _ = system
        .event_stream()
        .subscribe_to::<protoactor::DeadLetterEvent, _>(move |ev| {
            if let Some(s) = ev.message.downcast_ref::<&str>() {
                p.push(*s);
            }
        });
    let (go, gate) = std::sync::mpsc::channel::<()>();
    let gate = std::sync::Mutex::new(gate);
    let slow = system.root().spawn(&Props::from_func(move |ctx| {
        if ctx.message().is::<u32>() {
            gate.lock().unwrap().recv_timeout(WAIT).unwrap();
            ctx.respond("late");
        }
    }));
    let f = system
        .root()
        .request_future(&slow, 1u32, Duration::from_millis(50));
    std::thread::sleep(Duration::from_millis(150));
    go.send(()).unwrap();
    assert_eq!(rx.next(), "late");
    assert!(matches!(f.result(), Err(FutureError::Timeout { .. })));
}

#[test]
fn wait_and_result_block_a_plain_thread_until_the_response() {
    let system = ActorSystem::new();
    let pid = system.root().spawn(&echo());
    let (system2, pid2) = (system.clone(), pid.clone());
    // A plain OS thread, outside any async runtime.
    let (waited, result) = std::thread::spawn(move || {
        let f = system2.root().request_future(&pid2, 5u32, WAIT);
        let waited = f.wait();
        let result = f.result().map(|m| m.downcast_ref::<u32>().copied());
        (waited, result)
    })
    .join()
    .unwrap();
    assert_eq!(waited, Ok(()));
    assert_eq!(
        result,
        Ok(Some(5)),
        "result() after wait() still has the response"
    );
}

/// `Process::on_completion` (what tracing middleware follows a request/response pair
/// with): a future runs its hooks once, with `None` on a response and the error's text on
/// a timeout; another process (an actor) hands the hook back.
#[test]
fn completion_hooks_run_once_on_response_and_timeout() {
    let system = ActorSystem::new();
    let (p, rx) = probe::<Option<String>>();
    let hook = |p: common::Probe<Option<String>>| -> protoactor::runtime::CompletionHook {
        Box::new(move |e: Option<&str>| p.push(e.map(str::to_owned)))
    };
    let answered = ActorFuture::new(&system, WAIT);
    assert!(answered
        .pid()
        .resolve(&system)
        .on_completion(hook(p.clone()))
        .is_ok());
    system.root().send(answered.pid(), "reply");
    assert_eq!(rx.next(), None);
    let late = ActorFuture::new(&system, Duration::from_millis(20));
    assert!(late
        .pid()
        .resolve(&system)
        .on_completion(hook(p.clone()))
        .is_ok());
    let late_pid = late.pid().clone();
    assert!(late.wait().is_err());
    assert_eq!(
        rx.next(),
        Some(format!("future {late_pid} timed out after 20ms"))
    );
    let actor = system.root().spawn(&Props::from_func(|_| {}));
    assert!(actor.resolve(&system).on_completion(hook(p)).is_err());
    rx.assert_quiet(Duration::from_millis(50));
}

/// `request_async`: sent by the first poll, not by the call; answered, timed out and
/// dead-lettered as `request_future` is, on the system's runtime and off it.
#[test]
fn request_async_is_sent_when_polled_and_answers_like_request_future() {
    let system = ActorSystem::new();
    let (p, rx) = probe::<u32>();
    let pid = system.root().spawn(&Props::from_func(move |ctx| {
        if let Some(n) = ctx.message_as::<u32>() {
            p.push(*n);
            ctx.respond(*n);
        }
    }));
    let root = system.root();
    let first = system
        .runtime()
        .block_on({
            let (root, pid) = (root.clone(), pid.clone());
            system.runtime().spawn(async move {
                let unpolled = root.request_async(&pid, 1u32, WAIT);
                // Not sent yet: a later request is the first the target sees.
                let first = root.request_async(&pid, 2u32, WAIT).await;
                drop(unpolled);
                first
            })
        })
        .expect("requester task");
    assert_eq!(
        first.ok().and_then(|m| m.downcast_ref::<u32>().copied()),
        Some(2)
    );
    assert_eq!(
        rx.next(),
        2,
        "the dropped, never polled request was never sent"
    );

    let silent = system.root().spawn(&Props::from_func(|_| {}));
    let short = Duration::from_millis(30);
    let r = system
        .runtime()
        .block_on(root.request_async(&silent, 3u32, short));
    assert!(r.err().is_some_and(|e| e.is_timeout()));
    system.root().stop_future(&silent).wait().unwrap();
    let r = system
        .runtime()
        .block_on(root.request_async(&silent, 4u32, WAIT));
    assert!(r.err().is_some_and(|e| e.is_dead_letter()));
    // Off the system's runtime (another executor) the target's own task runs the turn.
    let r = futures::executor::block_on(root.request_async(&pid, 5u32, WAIT));
    assert_eq!(
        r.ok().and_then(|m| m.downcast_ref::<u32>().copied()),
        Some(5)
    );
    assert_eq!(rx.next(), 5);
    system.shutdown();
}

/// A loop of `request_async`s answered in the awaiting task never returns `Pending` on its
/// own: the tokio budget makes it yield, so the worker's other tasks still run.
#[test]
fn a_loop_of_request_async_yields_to_other_tasks() {
    let system = ActorSystem::with_config(protoactor::Config::default().with_worker_threads(1));
    let pid = system.root().spawn(&echo());
    let ticked = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let root = system.root();
    let seen_ticks = system.runtime().block_on({
        let ticked = ticked.clone();
        system.runtime().spawn(async move {
            // A first round trip waits for the echo to start: from then on it is idle
            // whenever a request comes, and every turn runs in this task.
            let r = root.request_async(&pid, 0u32, WAIT).await;
            assert!(r.is_ok());
            // Queued behind this task on the one worker: it runs only if the loop yields.
            let flag = ticked.clone();
            tokio::spawn(async move { flag.store(true, std::sync::atomic::Ordering::SeqCst) });
            for i in 0..100_000u32 {
                let r = root.request_async(&pid, i, WAIT).await;
                assert_eq!(
                    r.ok().and_then(|m| m.downcast_ref::<u32>().copied()),
                    Some(i)
                );
                if ticked.load(std::sync::atomic::Ordering::SeqCst) {
                    return Some(i);
                }
            }
            None
        })
    });
    let at = seen_ticks.expect("requester task");
    assert!(
        at.is_some(),
        "the other task never ran during 100,000 requests"
    );
    // Before yielding, requests were answered in the task without its returning `Pending`
    // (the echo's turns ran in it).
    assert!(at > Some(0), "yielded at the first request: {at:?}");
    system.shutdown();
}
