//! What the actor system logs through `tracing`: throttled dead-letter lines and developer
//! supervision logging. A capturing subscriber is installed once for this test binary; the
//! tests take turns (a lock) because the capture is global.

mod common;

use std::fmt::Write as _;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use common::probe;
use protoactor::prelude::*;
use protoactor::{Config, DeadLetterEvent, SupervisorEvent};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context as LayerContext, SubscriberExt};
use tracing_subscriber::Layer;

/// One captured log line: its level, its message, and its other fields as `k=v` text.
#[derive(Debug, Clone)]
struct Line {
    level: Level,
    message: String,
    fields: String,
}

static LINES: Mutex<Vec<Line>> = Mutex::new(Vec::new());

struct Capture;

struct Fields<'a>(&'a mut String, &'a mut String);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        // The dead-letter line also has a field named `message` (the message type); the
        // event's own text comes first.
        if field.name() == "message" && self.0.is_empty() {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.1, "{}={value:?} ", field.name());
        }
    }
}

impl<S: Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &Event<'_>, _ctx: LayerContext<'_, S>) {
        let (mut message, mut fields) = (String::new(), String::new());
        event.record(&mut Fields(&mut message, &mut fields));
        LINES.lock().unwrap().push(Line {
            level: *event.metadata().level(),
            message,
            fields,
        });
    }
}

/// Installs the capture (once) and returns the turn lock with the buffer emptied.
fn capture() -> MutexGuard<'static, ()> {
    static INSTALL: OnceLock<()> = OnceLock::new();
    static TURN: Mutex<()> = Mutex::new(());
    INSTALL.get_or_init(|| {
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(Capture))
            .expect("no other global subscriber in this test binary");
    });
    let turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    LINES.lock().unwrap().clear();
    turn
}

fn lines() -> Vec<Line> {
    LINES.lock().unwrap().clone()
}

#[test]
fn dead_letter_logging_lets_n_lines_through_per_interval_then_reports_the_throttled_count() {
    let _turn = capture();
    // Long enough that the burst below cannot straddle two intervals on a loaded machine.
    let interval = Duration::from_secs(2);
    let system = ActorSystem::with_config(Config::default().with_dead_letter_throttle(2, interval));
    let (p, rx) = probe::<()>();
    let _sub = system
        .event_stream()
        .subscribe_to::<DeadLetterEvent, _>(move |_| p.push(()));
    let nobody = system.new_local_pid("nobody-throttle-test");

    for n in 0..5u32 {
        system.root().send(&nobody, n);
    }
    // Every dead letter is published, only the logging is throttled.
    rx.take(5);
    let dead_letter_lines = |all: &[Line]| {
        all.iter()
            .filter(|l| l.message == "dead letter" && l.fields.contains("nobody-throttle-test"))
            .count()
    };
    let throttled_lines = |all: &[Line]| {
        all.iter()
            .filter(|l| l.message == "dead letters were throttled")
            .map(|l| l.fields.clone())
            .collect::<Vec<_>>()
    };
    let burst = lines();
    assert_eq!(dead_letter_lines(&burst), 2, "{burst:#?}");
    assert!(throttled_lines(&burst).is_empty(), "{burst:#?}");

    // After the interval the next dead letter reports the 3 held back, and is logged itself.
    std::thread::sleep(interval + Duration::from_millis(200));
    system.root().send(&nobody, 5u32);
    rx.next();
    let after = lines();
    assert_eq!(throttled_lines(&after), ["throttled=3 "], "{after:#?}");
    assert_eq!(dead_letter_lines(&after), 3, "{after:#?}");
    assert!(after
        .iter()
        .filter(|l| l.message.starts_with("dead letter"))
        .all(|l| l.level == Level::INFO));
    system.shutdown();
}

/// Makes a root actor fail once and returns the log lines of the supervision decision.
fn supervision_lines(developer_logging: bool) -> Vec<Line> {
    let system = ActorSystem::with_config(
        Config::default().with_developer_supervision_logging(developer_logging),
    );
    let (p, rx) = probe::<()>();
    let _sub = system
        .event_stream()
        .subscribe_to::<SupervisorEvent, _>(move |_| p.push(()));
    let pid = system.root().spawn(&Props::from_func(|ctx| {
        if ctx.message().is::<&str>() {
            panic!("supervision logging test failure");
        }
    }));
    system.root().send(&pid, "fail");
    // The event is published right after the decision is logged.
    rx.next();
    let child = pid.to_string();
    let out = lines()
        .into_iter()
        .filter(|l| l.message == "[Supervision] actor failed" && l.fields.contains(&child))
        .collect();
    system.shutdown();
    out
}

#[test]
fn developer_supervision_logging_logs_decisions_at_error_level_only_when_on() {
    std::panic::set_hook(Box::new(|_| {}));
    let _turn = capture();
    let on = supervision_lines(true);
    assert_eq!(on.len(), 1, "{on:#?}");
    assert_eq!(on[0].level, Level::ERROR);
    assert!(on[0].fields.contains("directive=Restart"), "{on:#?}");
    assert!(
        on[0].fields.contains("supervision logging test failure"),
        "{on:#?}"
    );

    LINES.lock().unwrap().clear();
    let off = supervision_lines(false);
    assert_eq!(off.len(), 1, "{off:#?}");
    assert_eq!(
        off[0].level,
        Level::DEBUG,
        "off: the decision is only a debug line"
    );
}
