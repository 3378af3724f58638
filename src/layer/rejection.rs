//! The answer to a refused request, and how a host replaces it.

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use http::{Response, StatusCode};

use super::request_id::{RequestId, X_REQUEST_ID};
use crate::decision::Decision;
use crate::id::ApiRef;
use crate::identity::{HeaderFault, SourceFault};

/// The sentence of every `403 Forbidden` the gate sends.
pub const DENIED_DETAIL: &str = "Source API is not authorized to call the target API.";

/// The sentence of a denial answered as if the target did not exist; see
/// [`CrossApiLayer::with_denied_as_not_found`](crate::CrossApiLayer::with_denied_as_not_found).
pub const NOT_FOUND_DETAIL: &str = "The requested resource does not exist.";

/// Why the gate refused a request, handed to the [`Rejection`] that answers it.
///
/// Every refusal carries the request's correlation id and a stable machine-readable
/// [`code`](Self::code). The code never tells why a policy denied: every policy denial and
/// every unverified source shares `cross_api.denied`, so a refused caller learns nothing of
/// the target's policy, of its tenant's APIs, or of other tenants. The reason is in the log
/// event, which carries the same `request_id`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// The policy denied the call: `403 Forbidden`, code `cross_api.denied`.
    Denied {
        /// The caller.
        source: ApiRef,
        /// The target, when the request named one.
        target: Option<ApiRef>,
        /// The decision, with its reason and revision.
        decision: Decision,
        /// The correlation id.
        request_id: RequestId,
    },
    /// The policy denied the call, and the layer answers denials as if the target did not
    /// exist: `404 Not Found`, code `cross_api.not_found`.
    DeniedAsNotFound {
        /// The caller.
        source: ApiRef,
        /// The target, when the request named one.
        target: Option<ApiRef>,
        /// The decision, with its reason and revision.
        decision: Decision,
        /// The correlation id.
        request_id: RequestId,
    },
    /// An identity header is malformed: `400 Bad Request`, code `cross_api.malformed_header`.
    MalformedHeader {
        /// The header.
        header: HeaderName,
        /// What is wrong with it.
        fault: HeaderFault,
        /// The correlation id.
        request_id: RequestId,
    },
    /// The source claimed by a header contradicts the authenticated one, or no authenticated
    /// source backs the claim: `403 Forbidden`, code `cross_api.denied`.
    UnverifiedSource {
        /// What is wrong.
        fault: SourceFault,
        /// The correlation id.
        request_id: RequestId,
    },
}

impl Refusal {
    /// The status the default rejection answers with.
    pub const fn status(&self) -> StatusCode {
        match self {
            Self::MalformedHeader { .. } => StatusCode::BAD_REQUEST,
            Self::DeniedAsNotFound { .. } => StatusCode::NOT_FOUND,
            Self::Denied { .. } | Self::UnverifiedSource { .. } => StatusCode::FORBIDDEN,
        }
    }

    /// The stable, machine-readable code of the refusal: `cross_api.denied`,
    /// `cross_api.not_found` or `cross_api.malformed_header`.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::Denied { .. } | Self::UnverifiedSource { .. } => "cross_api.denied",
            Self::DeniedAsNotFound { .. } => "cross_api.not_found",
            Self::MalformedHeader { .. } => "cross_api.malformed_header",
        }
    }

    /// The correlation id, as in the body and the log event.
    pub const fn request_id(&self) -> &RequestId {
        match self {
            Self::Denied { request_id, .. }
            | Self::DeniedAsNotFound { request_id, .. }
            | Self::MalformedHeader { request_id, .. }
            | Self::UnverifiedSource { request_id, .. } => request_id,
        }
    }
}

/// Turns a [`Refusal`] into the response the client sees. The default is
/// [`problem_json`]; a host sets its own with
/// [`CrossApiLayer::with_rejection`](crate::CrossApiLayer::with_rejection).
///
/// The default builds its response in the refused request's own header map, emptied first,
/// so that a refusal allocates nothing; a host's own rejection builds its response as it
/// likes.
#[derive(Clone)]
pub struct Rejection(Respond);

type RejectionFn = dyn Fn(&Refusal) -> Response<Bytes> + Send + Sync;

#[derive(Clone)]
enum Respond {
    /// [`problem_json`], built in the refused request's own header map.
    ProblemJson,
    /// The host's own.
    Custom(Arc<RejectionFn>),
}

impl Rejection {
    /// A rejection that answers with `respond`.
    pub fn new<F>(respond: F) -> Self
    where
        F: Fn(&Refusal) -> Response<Bytes> + Send + Sync + 'static,
    {
        Self(Respond::Custom(Arc::new(respond)))
    }

    /// Answers `refusal`. The default rejection empties `recycled`, the refused request's
    /// header map, and answers with it, so that a refusal allocates no header map of its
    /// own; none of the request's headers is kept.
    pub(crate) fn respond(&self, refusal: &Refusal, recycled: HeaderMap) -> Response<Bytes> {
        match &self.0 {
            Respond::ProblemJson => problem_json_in(refusal, recycled),
            Respond::Custom(respond) => respond(refusal),
        }
    }
}

impl Default for Rejection {
    /// [`problem_json`].
    fn default() -> Self {
        Self(Respond::ProblemJson)
    }
}

impl fmt::Debug for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Respond::ProblemJson => f.write_str("Rejection(problem_json)"),
            Respond::Custom(_) => f.write_str("Rejection(..)"),
        }
    }
}

const PROBLEM_JSON: HeaderValue = HeaderValue::from_static("application/problem+json");

/// The default rejection: an RFC 9457 `application/problem+json` body with the refusal's
/// `code` and `request_id`, and the id again in the `x-request-id` response header.
///
/// Every `403` carries the same body but for its `request_id`, whose `detail` is exactly
/// [`DENIED_DETAIL`] and whose `code` is `cross_api.denied`: a refused caller learns nothing
/// of the target's policy. A `404` for a concealed denial says only [`NOT_FOUND_DETAIL`]. A
/// `400` names the malformed header.
///
/// ```
/// use http::StatusCode;
/// use tower_cross_api::{Decision, Refusal, RequestId, problem_json};
///
/// let refusal = Refusal::Denied {
///     source: "acme/crm".parse()?,
///     target: Some("acme/orders".parse()?),
///     decision: Decision::no_snapshot(),
///     request_id: RequestId::parse(b"req-1").expect("sane"),
/// };
/// let response = problem_json(&refusal);
///
/// assert_eq!(response.status(), StatusCode::FORBIDDEN);
/// assert_eq!(response.headers()["x-request-id"], "req-1");
/// let body: serde_json::Value = serde_json::from_slice(response.body())?;
/// assert_eq!(body["code"], "cross_api.denied");
/// assert_eq!(body["request_id"], "req-1");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn problem_json(refusal: &Refusal) -> Response<Bytes> {
    problem_json_in(refusal, HeaderMap::new())
}

/// [`problem_json`] with `headers`, emptied, as the response's header map: the gate hands in
/// the refused request's own map so that the refusal allocates no new one, and a request id
/// the client sent is echoed in its own header value rather than a copy.
pub(crate) fn problem_json_in(refusal: &Refusal, mut headers: HeaderMap) -> Response<Bytes> {
    let request_id = refusal.request_id().as_str();
    let code = refusal.code();
    let status = refusal.status();
    let (body, written_id) = match refusal {
        Refusal::Denied { .. } | Refusal::UnverifiedSource { .. } => {
            write_problem(status, &[DENIED_DETAIL], None, code, request_id)
        }
        Refusal::DeniedAsNotFound { .. } => {
            write_problem(status, &[NOT_FOUND_DETAIL], None, code, request_id)
        }
        Refusal::MalformedHeader { header, fault, .. } => write_problem(
            status,
            &[
                "The ",
                header.as_str(),
                " header must appear once, as <tenant>/<api>: ",
                fault.message(),
                ".",
            ],
            Some(header.as_str()),
            code,
            request_id,
        ),
    };

    let echoed = headers
        .remove(X_REQUEST_ID)
        .filter(|value| value.as_bytes() == request_id.as_bytes())
        .or_else(|| HeaderValue::from_maybe_shared(written_id).ok());
    headers.clear();
    headers.insert(CONTENT_TYPE, PROBLEM_JSON);
    if let Some(value) = echoed {
        headers.insert(X_REQUEST_ID, value);
    }

    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// How many bytes of refusal bodies each thread writes into one buffer before it needs
/// another: about twenty `403` bodies. Small, because a body a slow client has not yet read
/// keeps its whole buffer alive: at worst 4 KiB per refusal held, next to the connection's
/// own buffers.
const BODY_BUFFER: usize = 4 * 1024;

thread_local! {
    /// The buffer this thread writes refusal bodies into. Each body is split off it as a
    /// shared [`Bytes`], and its `x-request-id` header value is a slice of that body. Once
    /// every body cut from a buffer has been dropped, the buffer is reused from its start,
    /// so a gate that answers its refusals as they come allocates nothing for them; only
    /// when the bodies of a whole buffer are still held does the thread take a new one.
    static BODIES: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

/// A refusal's problem body, written into this thread's buffer, and the request id as a
/// slice of it. Every part is a constant or text that needs no JSON escaping (header names,
/// the faults' sentences, request ids of `A-Za-z0-9-_.:`).
fn write_problem(
    status: StatusCode,
    detail: &[&str],
    header: Option<&str>,
    code: &str,
    request_id: &str,
) -> (Bytes, Bytes) {
    let header = header.map_or(["", ""], |header| [r#"","header":""#, header]);
    let opening = [
        r#"{"type":"about:blank","title":""#,
        status.canonical_reason().unwrap_or_default(),
        r#"","status":"#,
        status.as_str(),
        r#","detail":""#,
    ];
    let ending = [
        header[0],
        header[1],
        r#"","code":""#,
        code,
        r#"","request_id":""#,
    ];
    let groups = [&opening[..], detail, &ending[..]];
    let before_id = || groups.iter().flat_map(|parts| parts.iter());
    let closing = r#""}"#;
    let id_start: usize = before_id().map(|part| part.len()).sum();
    let len = id_start + request_id.len() + closing.len();

    let write = |buffer: &mut BytesMut| {
        if buffer.capacity() < len {
            buffer.reserve(len.max(BODY_BUFFER));
        }
        for part in before_id() {
            buffer.extend_from_slice(part.as_bytes());
        }
        buffer.extend_from_slice(request_id.as_bytes());
        buffer.extend_from_slice(closing.as_bytes());
        let body = buffer.split().freeze();
        let id = body.slice(id_start..id_start + request_id.len());
        (body, id)
    };

    BODIES
        .try_with(|buffer| write(&mut buffer.borrow_mut()))
        .unwrap_or_else(|_| write(&mut BytesMut::new()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::X_SOURCE_API;

    #[test]
    fn denied_body_is_valid_problem_json() {
        let refusal = Refusal::Denied {
            source: "t1/a".parse().expect("ref"),
            target: None,
            decision: Decision::no_snapshot(),
            request_id: request_id(),
        };
        let response = problem_json(&refusal);

        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(response.headers()[CONTENT_TYPE], "application/problem+json");
        assert_eq!(response.headers()[X_REQUEST_ID], "r-1");
        let body: serde_json::Value = serde_json::from_slice(response.body()).expect("json");
        assert_eq!(
            body,
            serde_json::json!({
                "type": "about:blank",
                "title": "Forbidden",
                "status": 403,
                "detail": DENIED_DETAIL,
                "code": "cross_api.denied",
                "request_id": "r-1",
            })
        );
    }

    fn request_id() -> RequestId {
        RequestId::parse(b"r-1").expect("sane")
    }

    #[test]
    fn unverified_source_looks_like_any_denial() {
        let denied = Refusal::Denied {
            source: "t1/a".parse().expect("ref"),
            target: Some("t1/b".parse().expect("ref")),
            decision: Decision::no_snapshot(),
            request_id: request_id(),
        };
        let unverified = Refusal::UnverifiedSource {
            fault: SourceFault::Unauthenticated {
                claimed: "t1/a".parse().expect("ref"),
            },
            request_id: request_id(),
        };

        assert_eq!(
            problem_json(&denied).body(),
            problem_json(&unverified).body()
        );
    }

    #[test]
    fn concealed_denial_is_a_plain_not_found() {
        let refusal = Refusal::DeniedAsNotFound {
            source: "t1/a".parse().expect("ref"),
            target: Some("t1/b".parse().expect("ref")),
            decision: Decision::no_snapshot(),
            request_id: request_id(),
        };
        let response = problem_json(&refusal);

        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let body: serde_json::Value = serde_json::from_slice(response.body()).expect("json");
        assert_eq!(body["detail"], NOT_FOUND_DETAIL);
        assert_eq!(body["code"], "cross_api.not_found");
        assert_eq!(body["request_id"], "r-1");
    }

    #[test]
    fn default_rejection_keeps_none_of_the_request_headers() {
        let refusal = Refusal::Denied {
            source: "t1/a".parse().expect("ref"),
            target: None,
            decision: Decision::no_snapshot(),
            request_id: request_id(),
        };
        let mut recycled = HeaderMap::new();
        recycled.insert(X_SOURCE_API, HeaderValue::from_static("t1/a"));
        recycled.append("cookie", HeaderValue::from_static("secret"));
        recycled.append("cookie", HeaderValue::from_static("more"));

        let response = Rejection::default().respond(&refusal, recycled);

        assert_eq!(response.headers().len(), 2);
        assert_eq!(response.headers()[CONTENT_TYPE], "application/problem+json");
        assert_eq!(response.headers()[X_REQUEST_ID], "r-1");
        assert_eq!(response.body(), &problem_json(&refusal).into_body());
        assert_eq!(
            format!("{:?}", Rejection::default()),
            "Rejection(problem_json)"
        );
        let custom = Rejection::new(problem_json);
        assert_eq!(format!("{custom:?}"), "Rejection(..)");
        assert_eq!(
            custom.respond(&refusal, HeaderMap::new()).status(),
            StatusCode::FORBIDDEN
        );
    }

    #[test]
    fn malformed_body_names_the_header() {
        let refusal = Refusal::MalformedHeader {
            header: X_SOURCE_API,
            fault: HeaderFault::Empty,
            request_id: request_id(),
        };
        let response = problem_json(&refusal);

        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body: serde_json::Value = serde_json::from_slice(response.body()).expect("json");
        assert_eq!(body["header"], "x-source-api");
        assert_eq!(body["code"], "cross_api.malformed_header");
        assert_eq!(body["request_id"], "r-1");
        assert_eq!(
            body["detail"],
            "The x-source-api header must appear once, as <tenant>/<api>: it is empty."
        );
    }
}
