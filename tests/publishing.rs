//! Snapshots replaced under traffic: requests racing a stream of publishes, and the policy
//! file followed on disk.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http::StatusCode;
use support::Gateway;
use tower_cross_api::PolicyHandle;
use tower_cross_api::source::FileSource;

/// Odd revisions let `acme/billing` call `acme/orders`; even revisions do not.
fn policy(revision: u64) -> String {
    let allow = if revision % 2 == 1 {
        r#"["billing"]"#
    } else {
        "[]"
    };
    format!(
        r#"{{ "revision": {revision}, "tenants": {{ "acme": {{
            "apis": ["orders", "billing"],
            "cross_api_access": {{ "orders": {{ "allow": {allow} }} }}
        }} }} }}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_racing_publishes_get_the_old_or_the_new_answer() {
    let policies = PolicyHandle::new();
    policies.publish_json(&policy(1)).expect("valid");
    let gateway = Arc::new(Gateway::start(policies.clone()).await);
    let publishing = Arc::new(AtomicBool::new(true));

    let publisher = tokio::spawn({
        let (policies, publishing) = (policies.clone(), publishing.clone());
        async move {
            let mut revision = 1;
            while publishing.load(Ordering::SeqCst) {
                revision += 1;
                policies.publish_json(&policy(revision)).expect("valid");
                tokio::task::yield_now().await;
            }
            revision
        }
    });

    let mut clients = Vec::new();
    for _ in 0..8 {
        let gateway = gateway.clone();
        clients.push(tokio::spawn(async move {
            let mut connection = gateway.connect().await;
            let (mut allowed, mut denied) = (0, 0);
            for _ in 0..150 {
                let before = gateway.state.policies.revision().expect("published");
                let headers: [(&str, &[u8]); 2] = [
                    ("x-source-api", b"acme/billing"),
                    ("authorization", b"Bearer ada"),
                ];
                let answer = connection
                    .get("/acme/orders/collections/c1", &headers)
                    .await;
                let after = gateway.state.policies.revision().expect("published");

                match answer.status {
                    StatusCode::OK => {
                        let revision = answer.json()["revision"].as_u64().expect("a revision");
                        assert!(revision % 2 == 1, "allowed under revision {revision}");
                        assert!((before..=after).contains(&revision), "{before}..{after}");
                        allowed += 1;
                    }
                    StatusCode::FORBIDDEN => {
                        answer.assert_denied();
                        let even_in_force = (before..=after).any(|revision| revision % 2 == 0);
                        assert!(even_in_force, "denied while only {before} was in force");
                        denied += 1;
                    }
                    other => panic!("neither policy answers {other}: {}", answer.text()),
                }
            }
            (allowed, denied)
        }));
    }

    let (mut allowed, mut denied) = (0, 0);
    for client in clients {
        let (a, d) = client.await.expect("client");
        allowed += a;
        denied += d;
    }
    publishing.store(false, Ordering::SeqCst);
    let last = publisher.await.expect("publisher");

    assert_eq!(allowed + denied, 8 * 150);
    assert!(last > 10, "the publisher ran: {last} revisions");
    println!("racing publishes: {allowed} allowed, {denied} denied over {last} revisions");
}

#[tokio::test]
async fn the_policy_file_is_followed_and_a_bad_file_keeps_the_snapshot() {
    let directory = std::env::temp_dir().join(format!("tower-cross-api-{}", std::process::id()));
    std::fs::create_dir_all(&directory).expect("a temporary directory");
    let path = directory.join("policy.json");
    std::fs::write(&path, policy(1)).expect("write the policy");

    let policies = PolicyHandle::new();
    let source = FileSource::new(&path, policies.clone()).with_interval(Duration::from_millis(20));
    assert_eq!(source.load().await.expect("the file is valid"), 1);
    let watcher = tokio::spawn(source.watch());
    let gateway = Gateway::start(policies.clone()).await;
    let headers: [(&str, &[u8]); 1] = [("x-source-api", b"acme/billing")];

    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        policies.revision(),
        Some(1),
        "an unchanged file was published again"
    );

    std::fs::write(&path, policy(2)).expect("write the policy");
    wait_for_revision(&policies, 2).await;
    gateway
        .get("/acme/orders/collections/c1", &headers)
        .await
        .assert_denied();

    std::fs::write(
        &path,
        r#"{ "tenants": { "acme": { "apis": ["orders", "orders"] } } }"#,
    )
    .expect("write a bad policy");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        policies.revision(),
        Some(2),
        "a bad file replaced the snapshot"
    );

    let unnumbered = policy(3).replace(r#""revision": 3,"#, "");
    std::fs::write(&path, unnumbered).expect("write the policy");
    wait_for_revision(&policies, 3).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        policies.revision(),
        Some(3),
        "an unchanged file was published again"
    );
    let answer = gateway.get("/acme/orders/collections/c1", &headers).await;
    answer.assert_reached_target_without_user();

    watcher.abort();
    std::fs::remove_dir_all(&directory).expect("remove the temporary directory");
}

async fn wait_for_revision(policies: &PolicyHandle, revision: u64) {
    for _ in 0..250 {
        if policies.revision() == Some(revision) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "revision {revision} was not published; in force: {:?}",
        policies.revision()
    );
}
