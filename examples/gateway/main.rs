//! An axum gateway that enforces cross-API access on its built-in demo data.
//!
//! ```text
//! cargo run --example gateway
//! curl -i -H 'x-source-api: acme/billing' -H 'Authorization: Bearer alice' \
//!     http://127.0.0.1:8080/acme/orders/collections/c1
//! ```
//!
//! With `--database-url postgres://...` (and `--features postgres`), PostgreSQL is the
//! source of truth, seeded with the demo policy on first use, and the administration API
//! takes writes.
//!
//! The settings page of the developer portal is at
//! `http://127.0.0.1:8080/portal/acme/apis/orders/settings/cross-api-access`.
//!
//! Over mutual TLS, the caller is the API named by its client certificate:
//!
//! ```text
//! cargo run --example gateway -- --tls
//! ```

mod app;
#[allow(dead_code, reason = "shared with the tests, which use other parts")]
mod pki;
mod portal;
mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use axum::http::header::{AUTHORIZATION, COOKIE};
use clap::Parser;
use metrics_exporter_prometheus::PrometheusBuilder;
use tower_cross_api::source::FileSource;
use tower_cross_api::{Enforcement, PolicyHandle, SpiffeMapping};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::TraceLayer;
use tracing_subscriber::EnvFilter;

/// An example gateway that enforces cross-API access.
#[derive(Debug, Parser)]
struct Args {
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// A policy document to enforce and follow; the built-in demo policy when left out.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// How often the policy file is checked for changes, in milliseconds.
    #[arg(long, default_value_t = 500, value_name = "MS")]
    reload_interval: u64,
    /// Serve HTTPS; linked APIs present client certificates, end users none.
    #[arg(long)]
    tls: bool,
    /// The directory of ca.pem, server.pem and server-key.pem (PKCS#8); generated with
    /// demo client certificates when absent or empty.
    #[arg(long, value_name = "DIR", requires = "tls")]
    tls_dir: Option<PathBuf>,
    /// The SPIFFE trust domain of client certificates.
    #[arg(
        long,
        default_value = "gateway.test",
        value_name = "DOMAIN",
        requires = "tls"
    )]
    trust_domain: String,
    /// Let denied calls through, logged and counted as `would_deny` (audit mode).
    #[arg(long)]
    audit: bool,
    /// PostgreSQL as the source of truth instead of a file (needs the `postgres` feature);
    /// an empty database is seeded with the demo policy.
    #[arg(long, value_name = "URL", conflicts_with = "policy")]
    database_url: Option<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{}", report(&error));
            ExitCode::FAILURE
        }
    }
}

/// What went wrong on one line: what the gateway was doing, then the error, whose own
/// message already says what caused it.
fn report(error: &anyhow::Error) -> String {
    match error.source() {
        Some(cause) => format!("error: {error}: {cause}"),
        None => format!("error: {error}"),
    }
}

async fn run() -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,tower_cross_api=debug"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let args = Args::parse();

    let policies = PolicyHandle::new();
    let mut state = match &args.database_url {
        Some(url) => database_state(url, policies).await?,
        None => file_state(&args, policies).await?,
    };
    let recorder = PrometheusBuilder::new()
        .install_recorder()
        .context("installing the Prometheus recorder")?;
    state.operations.metrics = Some(recorder);
    if args.audit {
        state.enforcement = Enforcement::Audit;
    }

    if args.tls {
        return serve_tls(&args, state).await;
    }

    let router = app::app(state.clone())
        .merge(portal::routes(state))
        .layer(TraceLayer::new_for_http())
        .layer(SetSensitiveRequestHeadersLayer::new([
            AUTHORIZATION,
            COOKIE,
        ]));
    let (listener, addr) = listen(args.addr).await?;
    tracing::info!(%addr, "gateway listening");
    axum::serve(listener, router).await.context("serving HTTP")
}

/// The listener on `addr` and the address it took (a port of its own for port 0), or an
/// error that names `addr`.
async fn listen(addr: SocketAddr) -> anyhow::Result<(tokio::net::TcpListener, SocketAddr)> {
    let listening = format!("listening on {addr} (--addr)");
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .context(listening.clone())?;
    let local = listener.local_addr().context(listening)?;
    Ok((listener, local))
}

/// Publishes the policy file (or the demo policy) and follows the file; read-only
/// administration.
async fn file_state(args: &Args, policies: PolicyHandle) -> anyhow::Result<app::AppState> {
    match &args.policy {
        Some(path) => {
            let source = FileSource::new(path, policies.clone())
                .with_interval(Duration::from_millis(args.reload_interval));
            let revision = source
                .load()
                .await
                .with_context(|| format!("loading the policy file {}", path.display()))?;
            tracing::info!(path = %path.display(), revision, "published the policy file");
            tokio::spawn(source.watch());
        }
        None => {
            let revision = policies
                .publish_json(&portal::demo_policy())
                .context("publishing the demo policy")?;
            tracing::info!(revision, "published the demo policy");
        }
    }
    Ok(app::AppState::new(policies))
}

/// Serves HTTPS, the caller of a linked call taken from its client certificate.
async fn serve_tls(args: &Args, state: app::AppState) -> anyhow::Result<()> {
    let mapping = SpiffeMapping::new(&args.trust_domain)
        .with_context(|| format!("--trust-domain {:?}", args.trust_domain))?;
    let dir = args
        .tls_dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("tower-cross-api-gateway-tls"));

    let (listener, addr) = listen(args.addr).await?;
    let fresh = tls::is_absent_or_empty(&dir)
        .with_context(|| format!("reading the TLS directory {} (--tls-dir)", dir.display()))?;
    if fresh {
        tls::generate(&dir, &mapping)
            .map_err(anyhow::Error::from_boxed)
            .with_context(|| format!("writing demo certificates into {}", dir.display()))?;
        println!("{}", tls::instructions(&dir, addr));
    }
    let config = tls::load(&dir)
        .map_err(anyhow::Error::from_boxed)
        .with_context(|| format!("loading the certificates in {}", dir.display()))?;

    let router = app::certificate_app(state.clone())
        .merge(portal::routes(state))
        .layer(TraceLayer::new_for_http())
        .layer(SetSensitiveRequestHeadersLayer::new([
            AUTHORIZATION,
            COOKIE,
        ]));
    tracing::info!(
        %addr,
        dir = %dir.display(),
        trust_domain = mapping.trust_domain(),
        "gateway listening over TLS"
    );
    match tls::serve(listener, config, mapping, router).await {}
}

/// Migrates and seeds the database, follows it into `policies`, and administers it.
#[cfg(feature = "postgres")]
async fn database_state(url: &str, policies: PolicyHandle) -> anyhow::Result<app::AppState> {
    use std::sync::Arc;
    use tower_cross_api::PolicyDocument;
    use tower_cross_api::source::{PostgresSource, PostgresStore};

    let store = PostgresStore::new(url).context("reading --database-url")?;
    store
        .migrate()
        .await
        .context("migrating the policy database (--database-url)")?;
    let demo = PolicyDocument::from_json(&portal::demo_policy()).context("the demo policy")?;
    if store
        .seed(&demo)
        .await
        .context("seeding the policy database")?
    {
        tracing::info!("seeded the empty policy database with the demo policy");
    }

    let source = PostgresSource::new(url, policies.clone()).context("reading --database-url")?;
    let revision = source.load().await.context("loading the policy database")?;
    tracing::info!(revision, "loaded the policy database");
    tokio::spawn(source.follow());
    Ok(app::AppState::new(policies).with_store(Arc::new(store)))
}

#[cfg(not(feature = "postgres"))]
async fn database_state(_url: &str, _policies: PolicyHandle) -> anyhow::Result<app::AppState> {
    anyhow::bail!("--database-url needs the gateway built with `--features postgres`")
}
