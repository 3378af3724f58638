//! The gate against its floor and its peers, in one run: `cargo bench --bench gate`.
//!
//! Groups: `floor`, `decision`, `identity`, `layer`, `peers`, `publish`. A filter after `--`
//! runs a part, as in `cargo bench --bench gate -- decision/10k`. BENCHMARKS.md reads the
//! results.

mod support;

use std::collections::hash_map::RandomState as StdState;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion};
use foldhash::fast::RandomState as FoldState;
use tower::Service;
use tower_cross_api::{
    AuthenticatedSource, PolicyHandle, Snapshot, SourceIdentity, TargetIdentity,
};

use support::{Call, Floor, Kind, SIZES, Size};

/// How many random keys a random-key bench cycles through.
const RANDOM_KEYS: usize = 1 << 14;

fn floor(c: &mut Criterion) {
    let mut group = c.benchmark_group("floor");
    let size = SIZES[1];
    let hit = Call::hot(Kind::Listed, size);
    let miss = "t5/ghost";

    let std_floor = Floor::<StdState>::new(size);
    let fold_floor = Floor::<FoldState>::new(size);
    let std_map = std_floor.swapped.load_full();
    let fold_map = fold_floor.swapped.load_full();

    group.bench_function("std_hash/hit", |b| {
        b.iter(|| std_map.get(black_box(hit.source_text.as_str())).copied())
    });
    group.bench_function("std_hash/miss", |b| {
        b.iter(|| std_map.get(black_box(miss)).copied())
    });
    group.bench_function("foldhash/hit", |b| {
        b.iter(|| fold_map.get(black_box(hit.source_text.as_str())).copied())
    });
    group.bench_function("foldhash/miss", |b| {
        b.iter(|| fold_map.get(black_box(miss)).copied())
    });
    group.bench_function("arc_swap_load", |b| {
        b.iter(|| black_box(&fold_floor.swapped).load().len())
    });
    group.bench_function("rwlock_arc_read", |b| {
        let lock: &RwLock<_> = &fold_floor.locked;
        b.iter(|| black_box(lock).read().map(|map| map.len()).unwrap_or(0))
    });
    group.finish();
}

fn decision(c: &mut Criterion) {
    for size in SIZES {
        let handle = support::handle(size);
        let floor = Floor::<FoldState>::new(size);
        let mut group = c.benchmark_group(format!("decision/{}", size.label));

        let hot = Call::hot(Kind::Listed, size);
        group.bench_function("floor/hot", |b| {
            b.iter(|| floor.probe(black_box(&hot.source_text), black_box(&hot.target_text)))
        });
        let random = Call::random(Kind::Listed, size, RANDOM_KEYS);
        group.bench_function("floor/random", |b| {
            let mut next = 0;
            b.iter(|| {
                let call = &random[next % RANDOM_KEYS];
                next += 1;
                floor.probe(&call.source_text, &call.target_text)
            })
        });

        for kind in Kind::ALL {
            let hot = Call::hot(kind, size);
            let random = Call::random(kind, size, RANDOM_KEYS);
            for call in random.iter().chain([&hot]) {
                let reason = handle.decide(&call.source, &call.target).reason();
                assert_eq!(reason, kind.reason(), "{call:?}");
            }

            group.bench_function(format!("{}/hot", kind.label()), |b| {
                b.iter(|| handle.decide(black_box(&hot.source), black_box(&hot.target)))
            });
            group.bench_function(format!("{}/random", kind.label()), |b| {
                let mut next = 0;
                b.iter(|| {
                    let call = &random[next % RANDOM_KEYS];
                    next += 1;
                    handle.decide(&call.source, &call.target)
                })
            });
        }
        group.finish();
    }
}

fn identity(c: &mut Criterion) {
    let mut group = c.benchmark_group("identity");
    let call = Call::hot(Kind::Listed, SIZES[0]);
    let (headers, ()) = call.request().into_parts();
    let (mut extension, ()) = http::Request::new(()).into_parts();
    extension
        .extensions
        .insert(AuthenticatedSource(call.source));

    let source = SourceIdentity::default();
    let authenticated = SourceIdentity::authenticated();
    let target = TargetIdentity::default();

    group.bench_function("source_and_target_from_headers", |b| {
        b.iter(|| {
            let parts = black_box(&headers);
            (source.resolve(parts).ok(), target.resolve(parts).ok())
        })
    });
    group.bench_function("source_from_extension", |b| {
        b.iter(|| authenticated.resolve(black_box(&extension)).ok())
    });
    group.finish();
}

fn layer(c: &mut Criterion) {
    let size = SIZES[0];
    let handle = support::handle(size);
    let mut group = c.benchmark_group("layer");
    let allowed = Call::hot(Kind::Listed, size);
    let denied = Call::hot(Kind::Denied, size);

    type MakeRequest = fn(&Call, &Call) -> http::Request<()>;
    let requests: [(&str, MakeRequest); 3] = [
        ("allowed", |allowed, _| allowed.request()),
        ("denied", |_, denied| denied.request()),
        ("end_user", |_, _| http::Request::new(())),
    ];
    for (label, request) in requests {
        group.bench_function(format!("passthrough/{label}"), |b| {
            let mut inner = support::inner();
            b.iter_batched(
                || request(&allowed, &denied),
                |request| support::now(inner.call(request)),
                BatchSize::SmallInput,
            )
        });
        group.bench_function(format!("gated/{label}"), |b| {
            let mut gated = support::gated(handle.clone());
            b.iter_batched(
                || request(&allowed, &denied),
                |request| support::now(gated.call(request)),
                BatchSize::SmallInput,
            )
        });
    }
    group.bench_function("decision_alone/allowed", |b| {
        b.iter(|| handle.decide(black_box(&allowed.source), black_box(&allowed.target)))
    });
    group.finish();
}

fn peers(c: &mut Criterion) {
    for size in &SIZES[..2] {
        let size = *size;
        let document = support::document(size, 1);
        let handle = support::handle(size);
        let cedar = support::cedar::Engine::new(&document);
        let cached = support::casbin::cached(&document);
        let plain = (size.apis() <= 10).then(|| support::casbin::plain(&document));
        let mut group = c.benchmark_group(format!("peers/{}", size.label));

        for kind in Kind::ALL {
            let hot = Call::hot(kind, size);
            let calls: Vec<Call> = Call::random(kind, size, 64)
                .into_iter()
                .chain([hot.clone()])
                .collect();
            support::check_agreement("cedar", &handle, &calls, |call| cedar.decide(call));
            support::check_agreement("cached casbin", &handle, &calls, |call| {
                support::casbin::decide(&cached, call)
            });
            if let Some(plain) = &plain {
                support::check_agreement("casbin", &handle, &calls, |call| {
                    support::casbin::decide(plain, call)
                });
            }

            let label = kind.label();
            group.bench_function(format!("gate/{label}"), |b| {
                b.iter(|| handle.decide(black_box(&hot.source), black_box(&hot.target)))
            });
            group.bench_function(format!("cedar_request/{label}"), |b| {
                b.iter(|| cedar.request(black_box(&hot)))
            });
            let request = cedar.request(&hot);
            group.bench_function(format!("cedar_authorize/{label}"), |b| {
                b.iter(|| cedar.authorize(black_box(&request)))
            });
            group.bench_function(format!("casbin_cached/{label}"), |b| {
                b.iter(|| support::casbin::decide(&cached, black_box(&hot)))
            });
            if let Some(plain) = &plain {
                group.bench_function(format!("casbin/{label}"), |b| {
                    b.iter(|| support::casbin::decide(plain, black_box(&hot)))
                });
            }
        }
        group.finish();
    }
}

/// A writer that publishes a new revision of a small snapshot every `period` (continuously
/// when zero) until dropped.
struct Writer {
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<u64>>,
}

impl Writer {
    fn start(handle: PolicyHandle, size: Size, period: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let revision = AtomicU64::new(handle.revision().unwrap_or(0));
        let flag = stop.clone();
        let document = support::document(size, 0);

        let thread = thread::spawn(move || {
            let mut published = 0;
            let mut next = Instant::now();
            while !flag.load(Ordering::Relaxed) {
                let mut document = document.clone();
                document.revision = Some(revision.fetch_add(1, Ordering::Relaxed) + 1);
                let snapshot = Snapshot::from_document(&document).expect("a valid document");
                handle.publish(snapshot).expect("a newer revision");
                published += 1;

                next += period;
                if let Some(wait) = next.checked_duration_since(Instant::now()) {
                    thread::sleep(wait);
                }
            }
            published
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let published = thread.join().expect("the writer ends");
            eprintln!("writer published {published} revisions");
        }
    }
}

fn publish(c: &mut Criterion) {
    let mut group = c.benchmark_group("publish");
    let periods = [
        ("readers/no_writer", None),
        ("readers/publish_every_ms", Some(Duration::from_millis(1))),
        ("readers/publish_continuously", Some(Duration::ZERO)),
    ];
    for (label, period) in periods {
        let handle = support::handle(SIZES[0]);
        let hot = Call::hot(Kind::Listed, SIZES[0]);
        let _writer = period.map(|period| Writer::start(handle.clone(), SIZES[0], period));
        group.bench_function(label, |b| {
            b.iter(|| handle.decide(black_box(&hot.source), black_box(&hot.target)))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("publish");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(1));
    let large = SIZES[2];
    let handle = support::handle(large);
    let mut document = support::document(large, 1);
    document.revision = None;
    group.bench_function("one_change_into_1M", |b| {
        b.iter_custom(|iterations| {
            let mut spent = Duration::ZERO;
            for _ in 0..iterations {
                support::toggle_one_grant(&mut document);
                let started = Instant::now();
                handle.publish_document(&document).expect("a valid change");
                spent += started.elapsed();
            }
            spent
        })
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1500))
        .configure_from_args()
}

fn main() {
    let mut criterion = config();

    floor(&mut criterion);
    decision(&mut criterion);
    identity(&mut criterion);
    layer(&mut criterion);
    peers(&mut criterion);
    publish(&mut criterion);
    criterion.final_summary();
}
