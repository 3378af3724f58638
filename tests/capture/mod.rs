//! Log events captured into a buffer per test thread.
//!
//! One global `tracing` subscriber serves the whole test binary and writes each event into
//! the buffer of the thread that logged it. Not one subscriber per thread: `tracing` caches
//! whether a callsite is wanted, and when a single thread-local subscriber is registered it
//! asks only the default of the thread that hits the callsite first; a test thread without
//! a subscriber then marks the callsite as unwanted for every thread, and a capturing test
//! loses that event.

#![allow(dead_code)]

use std::cell::RefCell;
use std::io::Write;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, Once};

use tracing_subscriber::fmt::MakeWriter;

/// The text the subscriber wrote for one test, shared with the test.
#[derive(Clone, Default)]
pub(crate) struct Captured(Arc<Mutex<Vec<u8>>>);

thread_local! {
    static CAPTURING: RefCell<Option<Captured>> = const { RefCell::new(None) };
}

/// The global subscriber's writer: the buffer of the thread that logs, if it captures.
struct ThisThread;

impl Write for ThisThread {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        CAPTURING.with(|capturing| {
            if let Some(captured) = &*capturing.borrow() {
                captured.0.lock().expect("lock").extend_from_slice(bytes);
            }
        });
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for ThisThread {
    type Writer = Self;

    fn make_writer(&'a self) -> Self {
        Self
    }
}

/// Stops the capture of its thread when dropped.
pub(crate) struct CaptureGuard(PhantomData<*const ()>);

impl Drop for CaptureGuard {
    fn drop(&mut self) {
        CAPTURING.with(|capturing| capturing.borrow_mut().take());
    }
}

impl Captured {
    /// Starts capturing every event up to debug on this thread, until the guard drops. On a
    /// current-thread runtime that covers the server's tasks too.
    pub(crate) fn start() -> (Self, CaptureGuard) {
        static INSTALLED: Once = Once::new();
        INSTALLED.call_once(|| {
            let subscriber = tracing_subscriber::fmt()
                .with_writer(ThisThread)
                .with_ansi(false)
                .with_max_level(tracing::Level::DEBUG)
                .finish();
            tracing::subscriber::set_global_default(subscriber)
                .expect("the test binary's one subscriber");
        });

        let captured = Self::default();
        CAPTURING.with(|capturing| *capturing.borrow_mut() = Some(captured.clone()));
        (captured, CaptureGuard(PhantomData))
    }

    /// The lines the gate logged so far.
    pub(crate) fn gate_events(&self) -> Vec<String> {
        let bytes = self.0.lock().expect("lock").clone();
        String::from_utf8(bytes)
            .expect("UTF-8 logs")
            .lines()
            .filter(|line| line.contains("tower_cross_api"))
            .map(str::to_owned)
            .collect()
    }
}
