//! Micro bench: a parent whose children stop one by one, at growing sizes. The cost per
//! child stays flat when removing a child from the parent's set is O(1) (an `IndexSet`'s
//! `shift_remove` made it grow with the number of children: quadratic in total).
//!
//! `cargo bench -p protoactor-bench --bench children` prints one row per size and order.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use protoactor::prelude::*;

/// Spawn `n` children, then stop them in the given order.
struct Run {
    n: usize,
    reverse: bool,
    done: mpsc::Sender<Duration>,
}

struct Parent {
    children: Vec<Pid>,
    left: usize,
    started: Option<Instant>,
    done: Option<mpsc::Sender<Duration>>,
}

impl Actor for Parent {
    fn receive(&mut self, ctx: &mut Context) {
        if let Some(run) = ctx.take_message::<Run>() {
            let props = Props::from_func(|_| {});
            self.children = (0..run.n).map(|_| ctx.spawn(&props)).collect();
            self.left = run.n;
            self.done = Some(run.done);
            self.started = Some(Instant::now());
            if run.reverse {
                self.children.reverse();
            }
            for c in std::mem::take(&mut self.children) {
                ctx.stop(&c);
            }
        } else if ctx.message_as::<Terminated>().is_some() {
            self.left -= 1;
            if self.left == 0 {
                let took = self.started.take().unwrap().elapsed();
                let _ = self.done.take().unwrap().send(took);
            }
        }
    }
}

fn main() {
    let system = ActorSystem::new();
    println!("| children | stop order | total | per child |");
    println!("|---:|---|---:|---:|");
    for n in [10_000usize, 100_000, 300_000] {
        for reverse in [false, true] {
            let parent = system.root().spawn(&Props::from_producer(|| Parent {
                children: Vec::new(),
                left: 0,
                started: None,
                done: None,
            }));
            let (tx, rx) = mpsc::channel();
            system.root().send(
                &parent,
                Run {
                    n,
                    reverse,
                    done: tx,
                },
            );
            let took = rx.recv().expect("the parent reports");
            let order = if reverse {
                "newest first"
            } else {
                "spawn order"
            };
            println!(
                "| {n} | {order} | {:.1} ms | {:.0} ns |",
                took.as_secs_f64() * 1e3,
                took.as_nanos() as f64 / n as f64
            );
            system.root().stop_future(&parent).wait().ok();
        }
    }
    system.shutdown();
}
