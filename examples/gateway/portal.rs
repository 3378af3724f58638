//! The developer portal's Cross-API access settings page, built on the administration API.
//!
//! - `GET /portal/{tenant}/apis/{api}/settings/cross-api-access`: the page, rendered on the
//!   server for the person signed in, or the sign-in form.
//! - `POST /portal/sign-in` and `POST /portal/sign-out`: a demo token kept in a session
//!   cookie (no expiry: it goes when the browser closes).
//! - `GET /portal/assets/portal.js` and `/portal/assets/portal.css`: the page's small script
//!   and its style, shipped inside the binary.
//!
//! Anybody signed in sees the setting; whether they may change it is the administration
//! API's rule ([`Actor::may_change`]). The script saves through `PUT /admin/...` with the
//! person's own token and the revision the page was loaded at as `If-Match`, so the server
//! refuses a write whatever the page lets through.

use std::fmt::Write as _;

use axum::Router;
use axum::extract::{Form, Path, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE,
    X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use tower_cross_api::admin::{Actor, AdminError, PolicyState};
use tower_cross_api::{
    AccessDocument, ApiId, ApiRef, Enforcement, PolicyDocument, TenantDocument, TenantId,
};

use crate::app::admin::AdminBackend;
use crate::app::{AppState, DEMO_POLICY, DEMO_USERS, DemoUser, Role};

/// The cookie that keeps the demo token for the browser session.
const SESSION_COOKIE: &str = "portal_token";

/// The page's script and style.
const SCRIPT: &str = include_str!("portal/portal.js");
const STYLE: &str = include_str!("portal/portal.css");

/// Scripts and styles from the gateway only; no inline code, no frames.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
                   img-src 'self'; connect-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

/// The tenant whose long list of APIs makes the search box matter.
pub(crate) const LARGE_TENANT: &str = "umbrella";

/// The tenant with one API only.
pub(crate) const SINGLE_API_TENANT: &str = "solo";

/// The portal's routes, with their state, to merge into the gateway's router.
pub(crate) fn routes(state: AppState) -> Router {
    Router::new()
        .route(
            "/portal/{tenant}/apis/{api}/settings/cross-api-access",
            get(settings_page),
        )
        .route("/portal/sign-in", post(sign_in))
        .route("/portal/sign-out", post(sign_out))
        .route("/portal/assets/portal.js", get(script))
        .route("/portal/assets/portal.css", get(style))
        .with_state(state)
}

/// The demo policy with the portal's tenants added: `umbrella`, with 300 APIs, and `solo`,
/// with one.
pub(crate) fn demo_policy() -> String {
    let mut document =
        PolicyDocument::from_json(DEMO_POLICY).expect("the demo policy is a valid document");

    let areas = [
        "accounts",
        "analytics",
        "billing",
        "catalog",
        "checkout",
        "claims",
        "delivery",
        "fraud",
        "identity",
        "inventory",
        "ledger",
        "loyalty",
        "messaging",
        "orders",
        "payments",
        "pricing",
        "quotes",
        "refunds",
        "search",
        "shipping",
    ];
    let parts = [
        "api", "admin", "audit", "cache", "events", "export", "gateway", "import", "index", "jobs",
        "notify", "reports", "rules", "sync", "webhooks",
    ];
    let apis = areas
        .iter()
        .flat_map(|area| parts.iter().map(move |part| format!("{area}-{part}")))
        .collect();
    let large = TenantDocument {
        apis,
        cross_api_access: [
            (
                "orders-api",
                access(&["checkout-api", "payments-api", "shipping-events"]),
            ),
            ("payments-api", access(&["orders-api", "fraud-rules"])),
            (
                "analytics-reports",
                AccessDocument {
                    allow_all: true,
                    ..AccessDocument::default()
                },
            ),
        ]
        .into_iter()
        .map(|(target, policy)| (target.to_owned(), policy))
        .collect(),
    };
    document.tenants.insert(LARGE_TENANT.to_owned(), large);

    let single = TenantDocument {
        apis: vec![String::from("intake")],
        cross_api_access: Default::default(),
    };
    document
        .tenants
        .insert(SINGLE_API_TENANT.to_owned(), single);
    document.to_json()
}

fn access(allow: &[&str]) -> AccessDocument {
    AccessDocument {
        allow: Some(allow.iter().map(|api| (*api).to_owned()).collect()),
        ..AccessDocument::default()
    }
}

/// The sign-in form's fields.
#[derive(Debug, Deserialize)]
struct SignIn {
    token: String,
    next: String,
}

/// The sign-out form's field.
#[derive(Debug, Deserialize)]
struct SignOut {
    next: String,
}

async fn settings_page(
    State(state): State<AppState>,
    Path((tenant, api)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let here = format!("/portal/{tenant}/apis/{api}/settings/cross-api-access");
    let Some(target) = target(&tenant, &api) else {
        return page(
            StatusCode::NOT_FOUND,
            "Not found",
            &not_found(&tenant, &api),
        );
    };
    let Some(user) = signed_in(&headers) else {
        return page(StatusCode::OK, "Sign in", &sign_in_form(&here, None));
    };

    let policy = match read(&state, &target).await {
        Ok(policy) => policy,
        Err(Unreadable::NotFound) => {
            return page(
                StatusCode::NOT_FOUND,
                "Not found",
                &not_found(&tenant, &api),
            );
        }
        Err(Unreadable::Unavailable) => {
            let body = "<p class=\"notice\">The policies cannot be read right now; try again \
                        in a moment.</p>";
            return page(StatusCode::SERVICE_UNAVAILABLE, "Unavailable", body);
        }
    };
    let mut others = other_apis(&state, &target);
    others.sort_by(|a, b| {
        let later = |api: &ApiId| !policy.allow().contains(api);
        (later(a), a.as_str()).cmp(&(later(b), b.as_str()))
    });

    let view = View {
        user,
        target,
        policy: &policy,
        others: &others,
        read_only: read_only_reason(&state, &user, &target),
        here: &here,
    };
    page(StatusCode::OK, "Cross-API access", &view.render())
}

async fn sign_in(Form(form): Form<SignIn>) -> Response {
    let next = safe_next(&form.next);
    let Some(user) = DemoUser::find(form.token.trim()) else {
        let error = "That token is not one of the demo users: try one listed below.";
        let body = sign_in_form(next, Some(error));
        return page(StatusCode::UNAUTHORIZED, "Sign in", &body);
    };

    tracing::info!(user = user.name, "signed in to the portal");
    let cookie = format!("{SESSION_COOKIE}={}; Path=/; SameSite=Strict", user.name);
    redirect(next, &cookie)
}

async fn sign_out(Form(form): Form<SignOut>) -> Response {
    let cookie = format!("{SESSION_COOKIE}=; Path=/; SameSite=Strict; Max-Age=0");
    redirect(safe_next(&form.next), &cookie)
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

/// Why the page could not read the setting.
enum Unreadable {
    /// No such tenant or API.
    NotFound,
    /// No snapshot loaded yet, or the database did not answer.
    Unavailable,
}

/// The target's policy and the revision a write must be based on, read for the portal
/// itself: the page shows the setting to everybody signed in, read-only to those who may not
/// change it, and the administration API still decides every write.
async fn read(state: &AppState, target: &ApiRef) -> Result<PolicyState, Unreadable> {
    let portal = Actor::staff("portal");

    let read = match &state.admin {
        AdminBackend::File(policies) => {
            let snapshot = policies.snapshot().ok_or(Unreadable::Unavailable)?;
            PolicyState::read(&snapshot, &portal, target)
        }
        #[cfg(feature = "postgres")]
        AdminBackend::Postgres(store) => match store.read(&portal, target).await {
            Ok(policy) => Ok(policy),
            Err(error) => match error.admin() {
                Some(refused) => Err(refused.clone()),
                None => {
                    tracing::error!(error = %error, "the portal could not read a policy");
                    return Err(Unreadable::Unavailable);
                }
            },
        },
    };
    read.map_err(|error| match error {
        AdminError::UnknownTenant { .. } | AdminError::UnknownTarget { .. } => Unreadable::NotFound,
        _ => Unreadable::Unavailable,
    })
}

/// The other APIs of the target's tenant: never the target, never another tenant's. The page
/// lists those allowed now first, then the others, each by name.
fn other_apis(state: &AppState, target: &ApiRef) -> Vec<ApiId> {
    let Some(snapshot) = state.policies.snapshot() else {
        return Vec::new();
    };

    snapshot
        .apis_of(target.tenant())
        .filter(|api| api != target.api())
        .collect()
}

/// Why `user` sees the setting read-only, or `None` when they may change it here.
fn read_only_reason(state: &AppState, user: &DemoUser, target: &ApiRef) -> Option<String> {
    let tenant = target.tenant().as_str();
    let who_may = format!("Only administrators of {tenant} and platform staff can change it.");

    let reason = match (user.role, user.tenant) {
        (Role::Staff, _) => None,
        (Role::Administrator, Some(own)) if own == tenant => None,
        (Role::Administrator, Some(own)) => Some(format!("You administer {own}, not {tenant}.")),
        (Role::Member, Some(own)) if own == tenant => Some(format!(
            "You are a member of {tenant}, not an administrator."
        )),
        (Role::Member, Some(own)) => Some(format!("You are a member of {own}, not {tenant}.")),
        (_, None) => Some(String::from("You belong to no tenant.")),
    };
    if let Some(reason) = reason {
        return Some(format!("{reason} {who_may}"));
    }

    match &state.admin {
        AdminBackend::File(_) => Some(String::from(
            "This gateway reads its policies from a file or its built-in demo data: change \
             the file, or run the gateway with --database-url to change them here.",
        )),
        #[cfg(feature = "postgres")]
        AdminBackend::Postgres(_) => None,
    }
}

/// What the settings page shows.
struct View<'a> {
    user: DemoUser,
    target: ApiRef,
    policy: &'a PolicyState,
    others: &'a [ApiId],
    read_only: Option<String>,
    here: &'a str,
}

impl View<'_> {
    fn render(&self) -> String {
        let tenant = escape(self.target.tenant().as_str());
        let api = escape(self.target.api().as_str());
        let editable = self.read_only.is_none();
        let disabled = if editable { "" } else { " disabled" };
        let mut html = String::new();

        html.push_str(&self.header());
        let _ = write!(
            html,
            "<main>\n<p class=\"crumbs\">{tenant} / APIs / {api} / Settings</p>\n\
             <h1>Cross-API access for <span id=\"api-name\">{tenant}/{api}</span></h1>\n\
             <p class=\"lead\">Which other APIs of {tenant} may call <strong>{api}</strong> \
             on behalf of a user and access its data.</p>\n\
             <section class=\"state\" aria-labelledby=\"state-title\">\n\
             <h2 id=\"state-title\">Current setting</h2>\n\
             <p id=\"state\">{summary}</p>\n\
             <p class=\"revision\">Revision <span id=\"revision\">{revision}</span></p>\n\
             </section>\n",
            summary = escape(&self.policy.summary()),
            revision = self.policy.revision(),
        );
        if let Some(reason) = &self.read_only {
            let _ = writeln!(
                html,
                "<p class=\"notice\" id=\"read-only\"><strong>Read-only.</strong> {}</p>",
                escape(reason)
            );
        }
        if self.policy.enforcement() == Enforcement::Audit {
            html.push_str(
                "<p class=\"notice\" id=\"audit-mode\"><strong>Audit mode.</strong> Calls this \
                 setting does not allow are let through and reported, not refused.</p>\n",
            );
        }
        if self.others.is_empty() {
            let _ = writeln!(
                html,
                "<p class=\"notice\" id=\"no-effect\">{api} is the only API of {tenant}: this \
                 setting has no effect until another API exists in {tenant}.</p>"
            );
        }

        let _ = write!(
            html,
            "<form id=\"access\" class=\"access\" data-tenant=\"{tenant}\" data-api=\"{api}\" \
             data-revision=\"{revision}\" data-editable=\"{editable}\" novalidate>\n\
             <fieldset{disabled}>\n<legend>Who may access this API's data</legend>\n\
             <div class=\"switch\">\n\
             <input type=\"checkbox\" role=\"switch\" id=\"allow-all\" name=\"allow_all\" \
             aria-describedby=\"allow-all-help\"{all}>\n\
             <label for=\"allow-all\">Allow all APIs</label>\n\
             <p id=\"allow-all-help\" class=\"help\">Every API of {tenant}, current and future, \
             may access this API's data.{clears}</p>\n\
             </div>\n",
            revision = self.policy.revision(),
            all = if self.policy.allow_all() {
                " checked"
            } else {
                ""
            },
            clears = if self.others.is_empty() {
                ""
            } else {
                " Turning this on clears the list below."
            },
        );
        html.push_str(&self.list());
        html.push_str("</fieldset>\n");
        if editable {
            html.push_str(
                "<div class=\"actions\">\n\
                 <button type=\"submit\" id=\"save\" aria-describedby=\"message\">Save</button>\n\
                 <p id=\"message\" class=\"message\" role=\"alert\" aria-live=\"assertive\"></p>\n\
                 </div>\n",
            );
        }
        html.push_str("</form>\n</main>\n");
        html
    }

    /// The signed-in person and the sign-out button.
    fn header(&self) -> String {
        let who = match (self.user.role, self.user.tenant) {
            (Role::Staff, _) => String::from("platform staff"),
            (Role::Administrator, Some(tenant)) => format!("administrator of {tenant}"),
            (Role::Member, Some(tenant)) => format!("member of {tenant}"),
            (_, None) => String::from("no tenant"),
        };
        format!(
            "<header class=\"bar\">\n<span class=\"brand\">Developer portal</span>\n\
             <form method=\"post\" action=\"/portal/sign-out\" class=\"who\">\n\
             <span id=\"signed-in\">Signed in as <strong>{name}</strong> ({who})</span>\n\
             <input type=\"hidden\" name=\"next\" value=\"{here}\">\n\
             <button type=\"submit\" id=\"sign-out\">Sign out</button>\n</form>\n</header>\n",
            name = escape(self.user.name),
            who = escape(&who),
            here = escape(self.here),
        )
    }

    /// The search box and one checkbox for each other API of the tenant.
    fn list(&self) -> String {
        let mut html = String::new();
        if self.others.is_empty() {
            return html;
        }

        let total = self.others.len();
        let list_disabled = if self.policy.allow_all() {
            " disabled"
        } else {
            ""
        };
        let _ = write!(
            html,
            "<div class=\"search\">\n<label for=\"search\">Search the APIs of {tenant}</label>\n\
             <input type=\"search\" id=\"search\" autocomplete=\"off\" spellcheck=\"false\" \
             aria-controls=\"apis\" aria-describedby=\"search-count\">\n\
             <p id=\"search-count\" class=\"help\" aria-live=\"polite\">Showing {total} of \
             {total} APIs.</p>\n</div>\n\
             <ul id=\"apis\" class=\"apis\" aria-label=\"APIs of {tenant}\">\n",
            tenant = escape(self.target.tenant().as_str()),
        );
        for other in self.others {
            let name = escape(other.as_str());
            let checked = if self.policy.allow().contains(other) {
                " checked"
            } else {
                ""
            };
            let _ = writeln!(
                html,
                "<li><input type=\"checkbox\" id=\"api-{name}\" name=\"allow\" \
                 value=\"{name}\"{checked}{list_disabled}><label for=\"api-{name}\">{name}</label>\
                 </li>"
            );
        }
        html.push_str("</ul>\n<p id=\"selected-count\" class=\"help\" aria-live=\"polite\"></p>\n");
        html
    }
}

fn sign_in_form(next: &str, error: Option<&str>) -> String {
    let mut users = String::new();
    for user in DEMO_USERS {
        let what = match (user.role, user.tenant) {
            (Role::Staff, _) => String::from("platform staff"),
            (Role::Administrator, Some(tenant)) => format!("administrator of {tenant}"),
            (Role::Member, Some(tenant)) => format!("member of {tenant}"),
            (_, None) => String::from("no tenant"),
        };
        let _ = writeln!(
            users,
            "<li><code>{}</code>: {}</li>",
            escape(user.name),
            escape(&what)
        );
    }
    let error = error.map_or_else(String::new, |error| {
        format!("<p id=\"sign-in-error\" class=\"message error\" role=\"alert\">{error}</p>\n")
    });

    format!(
        "<main class=\"narrow\">\n<h1>Sign in to the developer portal</h1>\n\
         <form method=\"post\" action=\"/portal/sign-in\" class=\"sign-in\">\n\
         <label for=\"token\">Demo token</label>\n\
         <input type=\"password\" id=\"token\" name=\"token\" required autocomplete=\"off\" \
         aria-describedby=\"token-help\" autofocus>\n\
         <input type=\"hidden\" name=\"next\" value=\"{next}\">\n{error}\
         <button type=\"submit\" id=\"sign-in\">Sign in</button>\n</form>\n\
         <div id=\"token-help\" class=\"help\">\n<p>The demo tokens are the users' names:</p>\n\
         <ul>\n{users}</ul>\n</div>\n</main>\n",
        next = escape(next),
    )
}

fn not_found(tenant: &str, api: &str) -> String {
    format!(
        "<main class=\"narrow\">\n<h1>Not found</h1>\n<p class=\"notice\">There is no API \
         {}/{}.</p>\n</main>\n",
        escape(tenant),
        escape(api)
    )
}

/// A whole HTML page around `body`.
fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title} · Developer portal</title>\n\
         <link rel=\"stylesheet\" href=\"/portal/assets/portal.css\">\n\
         <script src=\"/portal/assets/portal.js\" defer></script>\n</head>\n<body>\n{body}\
         </body>\n</html>\n",
        title = escape(title),
    );

    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

fn asset(content_type: &'static str, text: &'static str) -> Response {
    let mut response = text.into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

fn redirect(next: &str, cookie: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(next) {
        headers.insert(LOCATION, location);
    }
    if let Ok(cookie) = HeaderValue::from_str(cookie) {
        headers.insert(SET_COOKIE, cookie);
    }
    response
}

/// `next` when it is a page of this portal, else the portal's first page: a sign-in never
/// sends the browser to another site.
fn safe_next(next: &str) -> &str {
    let portal_page = next.starts_with("/portal/")
        && !next.contains("//")
        && next
            .bytes()
            .all(|byte| byte.is_ascii_graphic() && byte != b'\\');
    if portal_page {
        next
    } else {
        "/portal/acme/apis/orders/settings/cross-api-access"
    }
}

/// The demo user whose token the session cookie holds.
fn signed_in(headers: &HeaderMap) -> Option<DemoUser> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .and_then(|(_, token)| DemoUser::find(token))
}

fn target(tenant: &str, api: &str) -> Option<ApiRef> {
    Some(ApiRef::new(
        TenantId::new(tenant).ok()?,
        ApiId::new(api).ok()?,
    ))
}

/// `text` with the characters that mean something in HTML escaped, for element content and
/// quoted attribute values alike.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}
