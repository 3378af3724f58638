//! The answer to a refused request, and how a host replaces it.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use http::HeaderMap;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use http::{Response, StatusCode};

use crate::decision::Decision;
use crate::id::ApiRef;
use crate::identity::{HeaderFault, SourceFault};

/// The sentence of every `403 Forbidden` the gate sends.
pub const DENIED_DETAIL: &str = "Source API is not authorized to call the target API.";

/// Why the gate refused a request, handed to the [`Rejection`] that answers it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// The policy denied the call: `403 Forbidden`.
    Denied {
        /// The caller.
        source: ApiRef,
        /// The target, when the request named one.
        target: Option<ApiRef>,
        /// The decision, with its reason and revision.
        decision: Decision,
    },
    /// An identity header is malformed: `400 Bad Request`.
    MalformedHeader {
        /// The header.
        header: HeaderName,
        /// What is wrong with it.
        fault: HeaderFault,
    },
    /// The source claimed by a header contradicts the authenticated one, or no authenticated
    /// source backs the claim: `403 Forbidden`.
    UnverifiedSource {
        /// What is wrong.
        fault: SourceFault,
    },
}

impl Refusal {
    /// The status the default rejection answers with.
    pub const fn status(&self) -> StatusCode {
        match self {
            Self::MalformedHeader { .. } => StatusCode::BAD_REQUEST,
            Self::Denied { .. } | Self::UnverifiedSource { .. } => StatusCode::FORBIDDEN,
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

const DENIED_BODY: &str = concat!(
    r#"{"type":"about:blank","title":"Forbidden","status":403,"#,
    r#""detail":"Source API is not authorized to call the target API."}"#
);

/// The default rejection: an RFC 9457 `application/problem+json` body.
///
/// Every `403` carries the same body, whose `detail` is exactly [`DENIED_DETAIL`]: a refused
/// caller learns nothing of the target's policy. A `400` names the malformed header.
pub fn problem_json(refusal: &Refusal) -> Response<Bytes> {
    problem_json_in(refusal, HeaderMap::new())
}

/// [`problem_json`] with `headers` emptied as the response's header map.
fn problem_json_in(refusal: &Refusal, mut headers: HeaderMap) -> Response<Bytes> {
    let body = match refusal {
        Refusal::Denied { .. } | Refusal::UnverifiedSource { .. } => {
            Bytes::from_static(DENIED_BODY.as_bytes())
        }
        Refusal::MalformedHeader { header, fault } => {
            let problem = serde_json::json!({
                "type": "about:blank",
                "title": "Bad Request",
                "status": 400,
                "detail": format!(
                    "The {header} header must appear once, as <tenant>/<api>: {fault}."
                ),
                "header": header.as_str(),
            });
            Bytes::from(problem.to_string())
        }
    };

    headers.clear();
    headers.insert(CONTENT_TYPE, PROBLEM_JSON);

    let mut response = Response::new(body);
    *response.status_mut() = refusal.status();
    *response.headers_mut() = headers;
    response
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
        };
        let response = problem_json(&refusal);

        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(response.headers()[CONTENT_TYPE], "application/problem+json");
        let body: serde_json::Value = serde_json::from_slice(response.body()).expect("json");
        assert_eq!(body["detail"], DENIED_DETAIL);
        assert_eq!(body["status"], 403);
    }

    #[test]
    fn default_rejection_keeps_none_of_the_request_headers() {
        let refusal = Refusal::Denied {
            source: "t1/a".parse().expect("ref"),
            target: None,
            decision: Decision::no_snapshot(),
        };
        let mut recycled = HeaderMap::new();
        recycled.insert(X_SOURCE_API, HeaderValue::from_static("t1/a"));
        recycled.append("cookie", HeaderValue::from_static("secret"));
        recycled.append("cookie", HeaderValue::from_static("more"));

        let response = Rejection::default().respond(&refusal, recycled);

        assert_eq!(response.headers().len(), 1);
        assert_eq!(response.headers()[CONTENT_TYPE], "application/problem+json");
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
        };
        let response = problem_json(&refusal);

        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body: serde_json::Value = serde_json::from_slice(response.body()).expect("json");
        assert_eq!(body["header"], "x-source-api");
        assert_eq!(
            body["detail"],
            "The x-source-api header must appear once, as <tenant>/<api>: it is empty."
        );
    }
}
