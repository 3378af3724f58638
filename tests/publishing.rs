//! Snapshots replaced under traffic: requests racing a stream of publishes, and the policy
//! file followed on disk.

mod capture;
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use capture::Captured;
use http::StatusCode;
use support::Gateway;
use tower_cross_api::source::{FileSource, FileSourceError};
use tower_cross_api::{ApiRef, PolicyHandle, Reason};

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

/// A directory of its own for one test's policy file, removed when the test ends.
struct Directory(std::path::PathBuf);

impl Directory {
    fn new(test: &str) -> Self {
        let name = format!("tower-cross-api-{}-{test}", std::process::id());
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&path).expect("a temporary directory");
        Self(path)
    }
}

impl Drop for Directory {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn billing_to_orders(policies: &PolicyHandle) -> Reason {
    let (billing, orders): (ApiRef, ApiRef) = (
        "acme/billing".parse().expect("a reference"),
        "acme/orders".parse().expect("a reference"),
    );
    policies.decide(&billing, &orders).reason()
}

#[tokio::test]
async fn a_file_swapped_in_with_the_same_length_and_modification_time_is_read() {
    let directory = Directory::new("same-stamp");
    let path = directory.0.join("policy.json");
    let listing = |api: &str| {
        format!(
            r#"{{ "tenants": {{ "acme": {{
                "apis": ["orders", "billing", "reports"],
                "cross_api_access": {{ "orders": {{ "allow": ["{api}"] }} }}
            }} }} }}"#
        )
    };
    std::fs::write(&path, listing("billing")).expect("write the policy");
    let policies = PolicyHandle::new();
    let source = FileSource::new(&path, policies.clone()).with_interval(Duration::from_millis(20));
    assert_eq!(source.load().await.expect("the file is valid"), 1);
    let watcher = tokio::spawn(source.watch());
    tokio::time::sleep(Duration::from_millis(100)).await;

    // What `rsync -t` or `cp -p` then `mv` does: a new file, same length, same mtime.
    let staged = directory.0.join("staged.json");
    std::fs::write(&staged, listing("reports")).expect("write the new policy");
    let modified = std::fs::metadata(&path)
        .and_then(|metadata| metadata.modified())
        .expect("a modification time");
    std::fs::File::options()
        .write(true)
        .open(&staged)
        .and_then(|file| file.set_modified(modified))
        .expect("set the modification time");
    std::fs::rename(&staged, &path).expect("swap the file in");

    wait_for_revision(&policies, 2).await;
    assert_eq!(billing_to_orders(&policies), Reason::NotListed);
    watcher.abort();
}

#[tokio::test(flavor = "current_thread")]
async fn an_unreadable_file_is_logged_once_and_read_once_it_is_readable() {
    let (captured, _guard) = Captured::start();
    let directory = Directory::new("unreadable");
    let path = directory.0.join("policy.json");
    std::fs::create_dir(&path).expect("a directory where the file should be");
    let policies = PolicyHandle::new();
    policies.publish_json(&policy(1)).expect("valid");
    let source = FileSource::new(&path, policies.clone()).with_interval(Duration::from_millis(20));
    assert!(matches!(source.load().await, Err(FileSourceError::Read(_))));
    let watcher = tokio::spawn(source.watch());

    tokio::time::sleep(Duration::from_millis(300)).await;
    let refusals = || {
        captured
            .gate_events()
            .iter()
            .filter(|line| line.contains("ERROR") && line.contains("policy file refused"))
            .count()
    };
    assert_eq!(refusals(), 1, "tried at every tick, logged once");
    assert_eq!(policies.revision(), Some(1), "the snapshot in force stays");

    std::fs::remove_dir(&path).expect("remove the directory");
    std::fs::write(&path, policy(2)).expect("write the policy");
    wait_for_revision(&policies, 2).await;
    assert_eq!(billing_to_orders(&policies), Reason::NotListed);
    assert_eq!(refusals(), 1);
    watcher.abort();
}

#[tokio::test(flavor = "current_thread")]
async fn a_file_whose_metadata_alone_changed_is_not_published_again() {
    use std::os::unix::fs::PermissionsExt;

    let (captured, _guard) = Captured::start();
    let directory = Directory::new("metadata");
    let path = directory.0.join("policy.json");
    std::fs::write(&path, policy(1)).expect("write the policy");
    let policies = PolicyHandle::new();
    let source = FileSource::new(&path, policies.clone()).with_interval(Duration::from_millis(20));
    assert_eq!(source.load().await.expect("the file is valid"), 1);
    let watcher = tokio::spawn(source.watch());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before = policies.snapshot().expect("a snapshot");

    for mode in [0o600, 0o644] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    std::fs::hard_link(&path, directory.0.join("link.json")).expect("a hard link");
    tokio::time::sleep(Duration::from_millis(150)).await;

    let after = policies.snapshot().expect("a snapshot");
    assert!(
        Arc::ptr_eq(&before, &after),
        "the same snapshot stays in force"
    );
    let events = captured.gate_events();
    assert!(
        !events
            .iter()
            .any(|line| line.contains("policy file refused")),
        "a numbered document touched is not refused as stale: {events:#?}"
    );
    assert!(
        events
            .iter()
            .any(|line| line.contains("its document is the one in force")),
        "the touch was seen: {events:#?}"
    );
    watcher.abort();
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
