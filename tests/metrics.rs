//! Decision counters and snapshot gauges, read from a local recorder after a scripted
//! sequence of real requests: exact counts, and no series per garbage name.

mod echo;
mod support;

use std::collections::BTreeMap;
use std::future::Future;

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use tower_cross_api::{Enforcement, PolicyHandle, metrics as gate_metrics};

const POLICY: &str = r#"{ "revision": 12, "tenants": {
    "acme": {
        "apis": ["orders", "billing", "crm"],
        "cross_api_access": { "orders": { "allow": ["billing"] }, "billing": { "allow_all": true } }
    },
    "globex": { "apis": ["orders"] }
} }"#;

/// `(tenant, target, source, decision, reason)`.
type Series = (String, String, String, String, String);

/// Runs `script` on a current-thread runtime, so that the server and the client both record
/// into a recorder local to this test.
fn recorded<F: Future<Output = ()>>(script: impl FnOnce(PolicyHandle) -> F) -> Snapshotter {
    recorded_on(POLICY, script)
}

/// A runtime on the test's own thread, where its local recorder is in force.
fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// As [`recorded`], on the policy `policy`.
fn recorded_on<F: Future<Output = ()>>(
    policy: &str,
    script: impl FnOnce(PolicyHandle) -> F,
) -> Snapshotter {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let runtime = current_thread();

    let policies = PolicyHandle::new();
    policies.publish_json(policy).expect("valid");
    metrics::with_local_recorder(&recorder, || runtime.block_on(script(policies)));
    snapshotter
}

fn decisions(snapshotter: &Snapshotter) -> BTreeMap<Series, u64> {
    let mut series = BTreeMap::new();

    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        if key.key().name() != gate_metrics::DECISIONS {
            continue;
        }
        let label = |name: &str| {
            key.key()
                .labels()
                .find(|label| label.key() == name)
                .map(|label| label.value().to_owned())
                .unwrap_or_else(|| panic!("label {name} missing from {key:?}"))
        };
        let DebugValue::Counter(count) = value else {
            panic!("{key:?} is not a counter");
        };
        let labels = (
            label("tenant"),
            label("target"),
            label("source"),
            label("decision"),
            label("reason"),
        );
        assert_eq!(key.key().labels().count(), 5, "{key:?}");
        series.insert(labels, count);
    }
    series
}

fn gauges(snapshotter: &Snapshotter) -> BTreeMap<String, f64> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter_map(|(key, _, _, value)| match value {
            DebugValue::Gauge(value) => Some((key.key().name().to_owned(), value.into_inner())),
            _ => None,
        })
        .collect()
}

fn series(labels: [&str; 5], count: u64) -> (Series, u64) {
    let [tenant, target, source, decision, reason] = labels.map(str::to_owned);
    ((tenant, target, source, decision, reason), count)
}

#[test]
fn counters_equal_the_scripted_sequence() {
    let snapshotter = recorded(|policies| async move {
        let enforcing = echo::serve(echo::gated(echo::layer(&policies))).await;
        let auditing = echo::serve(echo::gated(
            echo::layer(&policies).with_enforcement(Enforcement::Audit),
        ))
        .await;
        let send = |addr, source: &'static str, path: &'static str| async move {
            echo::call(addr, Some(source), path, &[]).await
        };

        for _ in 0..3 {
            send(enforcing, "acme/billing", "/acme/orders/c").await;
        }
        for _ in 0..2 {
            send(enforcing, "acme/crm", "/acme/orders/c").await;
            send(auditing, "acme/crm", "/acme/orders/c").await;
        }
        send(enforcing, "acme/orders", "/acme/crm/c").await;
        send(enforcing, "globex/orders", "/acme/orders/c").await;
        for source in ["acme/ghost1", "acme/ghost2", "acme/ghost3", "acme/ghost4"] {
            send(enforcing, source, "/acme/orders/c").await;
        }
        for path in ["/acme/zzz1/c", "/acme/zzz2/c", "/acme/zzz3/c"] {
            send(enforcing, "acme/billing", path).await;
        }
        send(enforcing, "t9/x", "/t9/y/c").await;
        send(enforcing, "t8/x", "/t8/y/c").await;
        echo::call(
            enforcing,
            None,
            "/acme/orders/c",
            &[("x-source-api", b"ACME/x")],
        )
        .await;
        echo::call(enforcing, None, "/acme/orders/c", &[]).await;

        gate_metrics::record_snapshot(&policies);
    });

    let expected: BTreeMap<Series, u64> = [
        series(
            ["acme", "acme/orders", "acme/billing", "allow", "listed"],
            3,
        ),
        series(["acme", "acme/orders", "acme/crm", "deny", "not_listed"], 2),
        series(
            [
                "acme",
                "acme/orders",
                "acme/crm",
                "would_deny",
                "not_listed",
            ],
            2,
        ),
        series(
            [
                "acme",
                "acme/crm",
                "acme/orders",
                "deny",
                "nothing_configured",
            ],
            1,
        ),
        series(
            [
                "acme",
                "acme/orders",
                "globex/orders",
                "deny",
                "other_tenant",
            ],
            1,
        ),
        series(
            ["acme", "acme/orders", "unknown", "deny", "unknown_source"],
            4,
        ),
        series(
            ["acme", "unknown", "acme/billing", "deny", "unknown_target"],
            3,
        ),
        series(
            ["unknown", "unknown", "unknown", "deny", "unknown_tenant"],
            2,
        ),
        series(
            ["unknown", "unknown", "unknown", "deny", "malformed_header"],
            1,
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(decisions(&snapshotter), expected);
}

#[test]
fn garbage_callers_add_no_series() {
    let snapshotter = recorded(|policies| async move {
        let gate = echo::serve(echo::gated(echo::layer(&policies))).await;

        for round in 0..60 {
            let source = format!("acme/garbage{round}");
            let path = format!("/acme/nothing{round}/c");
            let tenant_path = format!("/junk{round}/orders/c");
            echo::call(gate, Some(&source), "/acme/orders/c", &[]).await;
            echo::call(gate, Some("acme/billing"), &path, &[]).await;
            echo::call(
                gate,
                Some(&format!("junk{round}/orders")),
                &tenant_path,
                &[],
            )
            .await;
            echo::call(gate, Some(&source), &path, &[]).await;
        }
    });

    let expected: BTreeMap<Series, u64> = [
        series(
            ["acme", "acme/orders", "unknown", "deny", "unknown_source"],
            60,
        ),
        series(
            ["acme", "unknown", "acme/billing", "deny", "unknown_target"],
            60,
        ),
        series(["acme", "unknown", "unknown", "deny", "unknown_target"], 60),
        series(
            ["unknown", "unknown", "unknown", "deny", "unknown_tenant"],
            60,
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(decisions(&snapshotter), expected);
}

/// A tenant `big` of `apis` APIs `a0`, `a1`, …: `a0` allows all, `a1` lists `a2` to `a9`,
/// the others have nothing configured.
fn pair_policy(apis: usize) -> String {
    let names: Vec<String> = (0..apis).map(|api| format!("a{api}")).collect();
    let policy = serde_json::json!({ "tenants": { "big": {
        "apis": names,
        "cross_api_access": {
            "a0": { "allow_all": true },
            "a1": { "allow": names[2..10] }
        }
    } } });
    policy.to_string()
}

/// Every ordered pair `(source, target)` of `apis` APIs, sources in the outer loop.
fn pairs(apis: usize) -> impl Iterator<Item = (usize, usize)> + Clone {
    (0..apis).flat_map(move |source| (0..apis).map(move |target| (source, target)))
}

/// What [`pair_policy`] decides for `a<source>` calling `a<target>`.
fn pair_outcome(source: usize, target: usize) -> (&'static str, &'static str) {
    match target {
        0 => ("allow", "allow_all"),
        _ if source == target => ("allow", "same_api"),
        1 if (2..10).contains(&source) => ("allow", "listed"),
        1 => ("deny", "not_listed"),
        _ => ("deny", "nothing_configured"),
    }
}

/// The series of the pair `(source, target)` counted `count` times.
fn pair_series((source, target): (usize, usize), count: u64) -> (Series, u64) {
    let (decision, reason) = pair_outcome(source, target);
    let (target, source) = (format!("big/a{target}"), format!("big/a{source}"));
    series(["big", &target, &source, decision, reason], count)
}

/// Calls `a<target>` as `a<source>` over HTTP and checks the answer against [`pair_outcome`].
async fn call_pair(gate: std::net::SocketAddr, (source, target): (usize, usize)) {
    let answer = echo::call(
        gate,
        Some(&format!("big/a{source}")),
        &format!("/big/a{target}/c"),
        &[],
    )
    .await;
    let allowed = pair_outcome(source, target).0 == "allow";
    assert_eq!(
        answer.status.is_success(),
        allowed,
        "a{source} -> a{target}"
    );
}

#[test]
fn every_pair_counts_exactly_when_pairs_outnumber_the_kept_keys() {
    const APIS: usize = 40;
    const TWICE: usize = APIS * 3;

    let snapshotter = recorded_on(&pair_policy(APIS), |policies| async move {
        let gate = echo::serve(echo::gated(echo::layer(&policies))).await;

        for pair in pairs(APIS).chain(pairs(APIS).take(TWICE)) {
            call_pair(gate, pair).await;
        }
    });

    let expected: BTreeMap<Series, u64> = pairs(APIS)
        .enumerate()
        .map(|(index, pair)| pair_series(pair, if index < TWICE { 2 } else { 1 }))
        .collect();
    assert_eq!(
        decisions(&snapshotter),
        expected,
        "1600 pairs against a snapshot that keeps at most 256 keys: the pairs that took a \
         slot count under its kept key, the others under a key built each time, all into one \
         series each"
    );
}

/// A recorder dropped and the next one made, as a host's warm-up or a test's would be, often
/// take the same address: each must still receive exactly its own decisions.
#[test]
fn each_recorder_in_turn_receives_exactly_its_own_decisions() {
    let runtime = current_thread();
    let policies = PolicyHandle::new();
    policies.publish_json(POLICY).expect("valid");
    let gate = runtime.block_on(echo::serve(echo::gated(echo::layer(&policies))));

    for round in 1..=12_u64 {
        let recorder = Box::new(DebuggingRecorder::new());
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&*recorder, || {
            runtime.block_on(async {
                for _ in 0..round {
                    echo::call(gate, Some("acme/billing"), "/acme/orders/c", &[]).await;
                }
            });
        });
        drop(recorder);

        let expected: BTreeMap<Series, u64> = [series(
            ["acme", "acme/orders", "acme/billing", "allow", "listed"],
            round,
        )]
        .into_iter()
        .collect();
        assert_eq!(decisions(&snapshotter), expected, "recorder {round}");
    }
}

/// The only test of this binary with a global recorder: the others count into recorders local
/// to their thread, which take precedence.
#[test]
fn pairs_counted_on_many_threads_at_once_count_exactly() {
    const APIS: usize = 20;
    const CLIENTS: usize = 8;
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    assert!(metrics::set_global_recorder(recorder).is_ok());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("runtime");
    let policies = PolicyHandle::new();
    policies.publish_json(&pair_policy(APIS)).expect("valid");

    runtime.block_on(async {
        let gate = echo::serve(echo::gated(echo::layer(&policies))).await;
        let clients: Vec<_> = (0..CLIENTS)
            .map(|client| {
                let order: Vec<_> = pairs(APIS)
                    .cycle()
                    .skip(client * 50)
                    .take(APIS * APIS)
                    .collect();
                tokio::spawn(async move {
                    for pair in order {
                        call_pair(gate, pair).await;
                    }
                })
            })
            .collect();
        for client in clients {
            client.await.expect("a client");
        }
    });

    let expected: BTreeMap<Series, u64> = pairs(APIS)
        .map(|pair| pair_series(pair, CLIENTS as u64))
        .collect();
    assert_eq!(
        decisions(&snapshotter),
        expected,
        "8 clients on 4 server threads, each calling all 400 pairs: slots taken concurrently, \
         by the first of several threads or by another pair, count every call once"
    );
}

#[test]
fn snapshot_gauges_report_the_revision_and_its_age() {
    let snapshotter = recorded(|policies| async move {
        gate_metrics::record_snapshot(&policies);
    });

    let gauges = gauges(&snapshotter);

    assert_eq!(gauges[gate_metrics::SNAPSHOT_REVISION], 12.0);
    let age = gauges[gate_metrics::SNAPSHOT_AGE];
    assert!((0.0..5.0).contains(&age), "{age}");
}

#[test]
fn no_snapshot_is_reported_as_revision_zero_and_negative_age() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();

    metrics::with_local_recorder(&recorder, || {
        gate_metrics::record_snapshot(&PolicyHandle::new());
    });

    let expected = [
        (gate_metrics::SNAPSHOT_AGE.to_owned(), -1.0),
        (gate_metrics::SNAPSHOT_REVISION.to_owned(), 0.0),
    ];
    assert_eq!(gauges(&snapshotter), expected.into_iter().collect());
}
