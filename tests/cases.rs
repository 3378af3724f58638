//! Every case of `../shared/cases/gate.json`, as the case states it, against the example
//! gateway over real sockets. Each test keeps its case's id in its name.
//!
//! The cases are read from `../shared/cases/` beside the checkout when it is there, else from
//! the copy in `tests/cases/`; a case without a test here fails `every_case_has_a_test`.

mod support;

use serde::Deserialize;
use serde_json::Value;
use support::{Answer, Gateway};
use tower_cross_api::{PolicyDocument, PolicyError, PolicyHandle, Rule};

#[derive(Debug, Deserialize)]
struct Cases {
    policy: Value,
    requests: Vec<Case>,
    steps: Vec<Steps>,
}

#[derive(Debug, Deserialize)]
struct Case {
    id: String,
    path: String,
    headers: Vec<(String, String)>,
    expect: Expect,
}

#[derive(Debug, Deserialize)]
struct Steps {
    id: String,
}

#[derive(Debug, Deserialize, PartialEq)]
struct Expect {
    status: u16,
    reaches_inner: bool,
}

fn cases() -> Cases {
    let root = env!("CARGO_MANIFEST_DIR");
    let shared = format!("{root}/../shared/cases/gate.json");
    let copy = format!("{root}/tests/cases/gate.json");
    let json = std::fs::read_to_string(&shared)
        .or_else(|_| std::fs::read_to_string(&copy))
        .expect("the cases file");
    serde_json::from_str(&json).expect("the cases file is JSON")
}

fn policy(cases: &Cases) -> PolicyDocument {
    serde_json::from_value(cases.policy.clone()).expect("the cases' policy is a document")
}

fn case_policy() -> PolicyHandle {
    let policies = PolicyHandle::new();
    policies
        .publish_document(&policy(&cases()))
        .expect("the cases' policy is valid");
    policies
}

async fn send(gateway: &Gateway, path: &str, headers: &[(String, String)]) -> Answer {
    let headers: Vec<(&str, &[u8])> = headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_bytes()))
        .collect();
    gateway.get(path, &headers).await
}

fn assert_expected(answer: &Answer, expect: &Expect, id: &str) {
    let seen = Expect {
        status: answer.status.as_u16(),
        reaches_inner: answer.reached_target,
    };
    assert_eq!(&seen, expect, "case {id}: {}", answer.text());

    if expect.status == 403 {
        answer.assert_denied();
    }
    if expect.status == 400 {
        answer.assert_malformed("x-source-api");
    }
}

async fn run_request_case(id: &str) {
    let cases = cases();
    let case = cases
        .requests
        .iter()
        .find(|case| case.id == id)
        .expect("the case exists");
    let gateway = Gateway::start(case_policy()).await;

    let answer = send(&gateway, &case.path, &case.headers).await;

    assert_expected(&answer, &case.expect, id);
}

macro_rules! request_cases {
    ($($test:ident => $id:literal,)*) => {
        $(
            #[tokio::test]
            async fn $test() {
                run_request_case($id).await;
            }
        )*

        const REQUEST_CASES: &[&str] = &[$($id),*];
    };
}

request_cases! {
    case_listed_caller => "listed-caller",
    case_allow_all_covers_every_sibling => "allow-all-covers-every-sibling",
    case_repeated_source_header => "repeated-source-header",
    case_comma_joined_source => "comma-joined-source",
    case_empty_source => "empty-source",
    case_empty_list_means_nobody => "empty-list-means-nobody",
    case_nothing_configured_means_nobody => "nothing-configured-means-nobody",
    case_same_name_other_tenant => "same-name-other-tenant",
    case_unknown_target => "unknown-target",
    case_unknown_source_under_allow_all => "unknown-source-under-allow-all",
    case_same_api_is_not_cross_api => "same-api-is-not-cross-api",
    case_end_user_traffic_passes => "end-user-traffic-passes",
}

const STEP_CASES: &[&str] = &[
    "revocation-on-same-connection",
    "bad-documents-keep-the-last-good-snapshot",
    "no-snapshot-yet",
];

#[test]
fn every_case_has_a_test() {
    let cases = cases();

    for case in &cases.requests {
        assert!(
            REQUEST_CASES.contains(&case.id.as_str()),
            "case {} has no test",
            case.id
        );
    }
    for steps in &cases.steps {
        assert!(
            STEP_CASES.contains(&steps.id.as_str()),
            "case {} has no test",
            steps.id
        );
    }
}

const BILLING: [(&str, &[u8]); 1] = [("x-source-api", b"t1/billing")];

#[tokio::test]
async fn case_revocation_on_same_connection() {
    let gateway = Gateway::start(case_policy()).await;
    let mut connection = gateway.connect().await;

    let answer = connection.get("/t1/orders/collections/c1", &BILLING).await;
    assert_eq!(answer.status, 401);
    assert_eq!(gateway.target_calls(), 1);

    let mut revoked = policy(&cases());
    revoked.revision = Some(2);
    let orders = revoked
        .tenants
        .get_mut("t1")
        .expect("t1")
        .cross_api_access
        .get_mut("orders");
    orders.expect("t1/orders has a policy").allow = Some(Vec::new());
    assert_eq!(gateway.state.policies.publish_document(&revoked), Ok(2));

    let answer = connection.get("/t1/orders/collections/c1", &BILLING).await;
    assert_eq!(
        gateway.target_calls(),
        1,
        "the revoked call reached the target"
    );
    answer.assert_denied();
}

#[tokio::test]
async fn case_bad_documents_keep_the_last_good_snapshot() {
    let gateway = Gateway::start(case_policy()).await;
    let good = serde_json::to_string(&cases().policy).expect("JSON");
    let orders_as = |access: &str| {
        good.replace(
            r#""orders":{"allow":["billing"]}"#,
            &format!(r#""orders":{access}"#),
        )
        .replacen(r#""revision":1"#, r#""revision":2"#, 1)
    };
    let orders = |rule| PolicyError::Rule {
        tenant: "t1".into(),
        api: Some("orders".into()),
        rule,
    };
    let bad_documents = [
        (
            orders_as(r#"{"allow_all":true,"allow":["billing"]}"#),
            orders(Rule::AllowAllWithList),
        ),
        (
            orders_as(r#"{"allow":["orders"]}"#),
            orders(Rule::SelfGrant),
        ),
        (
            orders_as(r#"{"allow":["t2/billing"]}"#),
            orders(Rule::MalformedIdentifier {
                value: "t2/billing".into(),
            }),
        ),
        (
            orders_as(r#"{"allow":["billing","billing"]}"#),
            orders(Rule::Repeated {
                value: "billing".into(),
            }),
        ),
        (
            orders_as(r#"{"allow":["payments"]}"#),
            orders(Rule::NotInTenant {
                listed: "payments".into(),
            }),
        ),
        (
            orders_as(r#"{"allow":["billing"]},"invoices":{"allow":[]}"#),
            PolicyError::Rule {
                tenant: "t1".into(),
                api: Some("invoices".into()),
                rule: Rule::UnknownTarget,
            },
        ),
        (
            orders_as(r#"{"allow":["billing"],"deny":[]}"#),
            PolicyError::Document {
                path: "tenants.t1.cross_api_access.orders.deny".into(),
                message: "unknown field `deny`, expected one of `allow_all`, `allow`, `enforce`"
                    .into(),
            },
        ),
        (
            good.clone(),
            PolicyError::StaleRevision {
                current: 1,
                offered: 1,
            },
        ),
    ];
    assert!(
        good.contains(r#""revision":1"#),
        "the policy is at revision 1: {good}"
    );

    for (document, expected) in &bad_documents {
        match (gateway.state.policies.publish_json(document), expected) {
            (
                Err(PolicyError::Document { path, message }),
                PolicyError::Document {
                    path: expected_path,
                    message: expected_message,
                },
            ) => {
                assert_eq!(&path, expected_path);
                assert!(message.starts_with(expected_message.as_str()), "{message}");
            }
            (refused, expected) => assert_eq!(refused.as_ref(), Err(expected)),
        }
        assert_eq!(gateway.state.policies.revision(), Some(1));
    }

    let answer = gateway.get("/t1/orders/collections/c1", &BILLING).await;
    answer.assert_reached_target_without_user();
}

#[tokio::test]
async fn case_no_snapshot_yet() {
    let gateway = Gateway::start(PolicyHandle::new()).await;

    let linked = gateway.get("/t1/orders/collections/c1", &BILLING).await;
    linked.assert_denied();

    let end_user = gateway.get("/t1/orders/collections/c1", &[]).await;
    end_user.assert_reached_target_without_user();
}
