//! The clients: HTTP/1.1 keep-alive and HTTP/2 connections that send a mix of allowed,
//! denied, malformed and end-user requests and check every answer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use http::response::Parts;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tower_cross_api::{X_SOURCE_API, X_TARGET_API};

use crate::server::{REACHED, REASON, REVISION, VERIFIED_SOURCE};
use crate::stats::Histogram;
use crate::world::{self, APIS, OTHER_TENANT, TENANT};

/// Source header values that are never `<tenant>/<api>`.
const MALFORMED: [&str; 7] = [
    "",
    "Soak/api1",
    "soak/api1,soak/api2",
    "soak//api1",
    "soak/api1/v2",
    "soak/%61pi1",
    "-soak/api1",
];

/// How the clients reach the gateway and how long they run.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    pub(crate) addr: SocketAddr,
    pub(crate) http1: usize,
    pub(crate) http2: usize,
    pub(crate) streams: usize,
    pub(crate) until: Instant,
    /// The newest revision the publisher has published.
    pub(crate) published: Arc<AtomicU64>,
}

/// What the clients saw.
#[derive(Clone, Debug, Default)]
pub(crate) struct Tally {
    pub(crate) requests: u64,
    pub(crate) allowed: u64,
    pub(crate) denied: u64,
    pub(crate) other_tenant: u64,
    pub(crate) unknown_source: u64,
    pub(crate) malformed: u64,
    pub(crate) end_user: u64,
    pub(crate) wrong: u64,
    pub(crate) transport_errors: u64,
    pub(crate) newest_revision_seen: u64,
    pub(crate) latency: Histogram,
}

impl Tally {
    fn merge(&mut self, other: &Self) {
        self.requests += other.requests;
        self.allowed += other.allowed;
        self.denied += other.denied;
        self.other_tenant += other.other_tenant;
        self.unknown_source += other.unknown_source;
        self.malformed += other.malformed;
        self.end_user += other.end_user;
        self.wrong += other.wrong;
        self.transport_errors += other.transport_errors;
        self.newest_revision_seen = self.newest_revision_seen.max(other.newest_revision_seen);
        self.latency.merge(&other.latency);
    }
}

/// Opens every connection, drives them until the plan's end and adds up what they saw.
pub(crate) async fn run(plan: Plan) -> Result<Tally, Box<dyn std::error::Error>> {
    let mut drivers = JoinSet::new();
    let mut seed = 0;

    for _ in 0..plan.http1 {
        let io = TokioIo::new(TcpStream::connect(plan.addr).await?);
        let (sender, connection) = http1::handshake(io).await?;
        tokio::spawn(connection);
        seed += 1;
        drivers.spawn(drive(Sender::Http1(sender), seed, plan.clone()));
    }
    for _ in 0..plan.http2 {
        let io = TokioIo::new(TcpStream::connect(plan.addr).await?);
        let (sender, connection) = http2::handshake(TokioExecutor::new(), io).await?;
        tokio::spawn(connection);
        for _ in 0..plan.streams {
            seed += 1;
            drivers.spawn(drive(Sender::Http2(sender.clone()), seed, plan.clone()));
        }
    }

    let mut tally = Tally::default();
    while let Some(driven) = drivers.join_next().await {
        tally.merge(&driven?);
    }
    Ok(tally)
}

enum Sender {
    Http1(http1::SendRequest<Empty<Bytes>>),
    Http2(http2::SendRequest<Empty<Bytes>>),
}

impl Sender {
    async fn send(&mut self, request: Request<Empty<Bytes>>) -> hyper::Result<Response<Incoming>> {
        match self {
            Self::Http1(sender) => {
                sender.ready().await?;
                sender.send_request(request).await
            }
            Self::Http2(sender) => {
                sender.ready().await?;
                sender.send_request(request).await
            }
        }
    }
}

/// One kind of request, with what it names.
#[derive(Clone, Copy, Debug)]
enum Call {
    /// `soak/api<source>` calls `soak/api<target>`: allowed or denied by the revision.
    Linked { source: u64, target: u64 },
    /// An API of another tenant calls `soak/api<target>`: always denied.
    OtherTenant { target: u64 },
    /// An API that no snapshot has calls `soak/api<target>`: always denied.
    UnknownSource { target: u64 },
    /// A malformed source header, or two of them: always `400`.
    Malformed { value: Option<&'static str> },
    /// No source: end-user traffic, always passed through.
    EndUser { target: u64 },
}

impl Call {
    fn pick(random: u64) -> Self {
        let source = (random >> 8) % APIS;
        let target = (random >> 16) % APIS;

        match random % 100 {
            0..55 => Self::Linked { source, target },
            55..65 => Self::OtherTenant { target },
            65..70 => Self::UnknownSource { target },
            70..85 => {
                let index = (random >> 24) as usize % (MALFORMED.len() + 1);
                Self::Malformed {
                    value: MALFORMED.get(index).copied(),
                }
            }
            _ => Self::EndUser { target },
        }
    }

    fn request(self, http2: bool, addr: SocketAddr) -> Request<Empty<Bytes>> {
        let uri = if http2 {
            format!("http://{addr}/collections/c1")
        } else {
            String::from("/collections/c1")
        };
        let mut request = Request::get(uri)
            .header(http::header::HOST, addr.to_string())
            .body(Empty::new())
            .expect("a valid request");
        let headers = request.headers_mut();
        let mut add = |name, value: String| {
            let value = HeaderValue::from_str(&value).expect("a valid header value");
            headers.append(name, value);
        };

        match self {
            Self::Linked { source, target } => {
                add(X_SOURCE_API, format!("{TENANT}/{}", world::api(source)));
                add(X_TARGET_API, format!("{TENANT}/{}", world::api(target)));
            }
            Self::OtherTenant { target } => {
                add(X_SOURCE_API, format!("{OTHER_TENANT}/api1"));
                add(X_TARGET_API, format!("{TENANT}/{}", world::api(target)));
            }
            Self::UnknownSource { target } => {
                add(X_SOURCE_API, format!("{TENANT}/ghost"));
                add(X_TARGET_API, format!("{TENANT}/{}", world::api(target)));
            }
            Self::Malformed { value: Some(value) } => add(X_SOURCE_API, value.to_owned()),
            Self::Malformed { value: None } => {
                add(X_SOURCE_API, format!("{TENANT}/api1"));
                add(X_SOURCE_API, format!("{TENANT}/api2"));
            }
            Self::EndUser { target } => {
                add(X_TARGET_API, format!("{TENANT}/{}", world::api(target)));
            }
        }
        request
    }
}

/// Sends requests on one connection (or one HTTP/2 stream at a time) until the plan's end.
async fn drive(mut sender: Sender, seed: u64, plan: Plan) -> Tally {
    let http2 = matches!(sender, Sender::Http2(_));
    let mut tally = Tally::default();
    let mut state = seed;

    while Instant::now() < plan.until {
        state = world::mix(state, seed, 7);
        let call = Call::pick(state);
        let published_before = plan.published.load(Ordering::SeqCst);
        let started = Instant::now();

        let answer = match sender.send(call.request(http2, plan.addr)).await {
            Ok(response) => {
                let (parts, body) = response.into_parts();
                body.collect().await.map(|_| parts)
            }
            Err(error) => Err(error),
        };
        let parts = match answer {
            Ok(parts) => parts,
            Err(error) => {
                eprintln!("soak: transport error on {call:?}: {error}");
                tally.transport_errors += 1;
                break;
            }
        };
        tally.latency.record(started.elapsed());
        tally.requests += 1;

        let published_after = plan.published.load(Ordering::SeqCst);
        let window = published_before..=published_after + 1;
        if let Err(wrong) = check(call, &parts, window, &mut tally) {
            tally.wrong += 1;
            if tally.wrong <= 10 {
                eprintln!("soak: WRONG answer to {call:?}: {wrong}");
            }
        }
    }
    tally
}

/// Checks one answer against the contract at the revision that decided it, which must lie
/// between the revision published before the request was sent and the one after.
fn check(
    call: Call,
    answer: &Parts,
    window: std::ops::RangeInclusive<u64>,
    tally: &mut Tally,
) -> Result<(), String> {
    let header = |name: &str| answer.headers.get(name).and_then(|v| v.to_str().ok());
    let reached = header(REACHED).is_some();
    let verified = header(VERIFIED_SOURCE);
    let reason = header(REASON).unwrap_or("-");
    let revision = header(REVISION).and_then(|revision| revision.parse::<u64>().ok());
    let decided = || match revision {
        Some(revision) if window.contains(&revision) => Ok(revision),
        Some(revision) => Err(format!(
            "decided at revision {revision}, outside {window:?}"
        )),
        None => Err(String::from("no revision")),
    };
    let expect = |status: StatusCode, reach: bool, source: Option<String>| {
        if answer.status == status && reached == reach && verified == source.as_deref() {
            Ok(())
        } else {
            Err(format!(
                "got {} reached={reached} verified={verified:?} reason={reason} \
                 revision={revision:?}, expected {status} reached={reach} verified={source:?}",
                answer.status
            ))
        }
    };

    match call {
        Call::Linked { source, target } => {
            let revision = decided()?;
            tally.newest_revision_seen = tally.newest_revision_seen.max(revision);
            if world::allows(revision, source, target) {
                tally.allowed += 1;
                let source = format!("{TENANT}/{}", world::api(source));
                expect(StatusCode::OK, true, Some(source))
            } else {
                tally.denied += 1;
                expect(StatusCode::FORBIDDEN, false, None)
            }
        }
        Call::OtherTenant { .. } => {
            tally.other_tenant += 1;
            decided()?;
            expect(StatusCode::FORBIDDEN, false, None)?;
            same(reason, "other_tenant")
        }
        Call::UnknownSource { .. } => {
            tally.unknown_source += 1;
            decided()?;
            expect(StatusCode::FORBIDDEN, false, None)?;
            same(reason, "unknown_source")
        }
        Call::Malformed { .. } => {
            tally.malformed += 1;
            expect(StatusCode::BAD_REQUEST, false, None)?;
            same(reason, "malformed")
        }
        Call::EndUser { .. } => {
            tally.end_user += 1;
            expect(StatusCode::OK, true, None)
        }
    }
}

fn same(reason: &str, expected: &str) -> Result<(), String> {
    if reason == expected {
        Ok(())
    } else {
        Err(format!("reason {reason}, expected {expected}"))
    }
}
