//! An axum gateway that enforces cross-API access on its built-in demo data.
//!
//! ```text
//! cargo run --example gateway
//! curl -i -H 'x-source-api: acme/billing' -H 'Authorization: Bearer alice' \
//!     http://127.0.0.1:8080/acme/orders/collections/c1
//! ```
//!
//! The settings page of the developer portal is at
//! `http://127.0.0.1:8080/portal/acme/apis/orders/settings/cross-api-access`.
//!
//! With `--database-url postgres://...` (and `--features postgres`), PostgreSQL is the
//! source of truth, seeded with the demo policy on first use, and the administration API
//! takes writes.

mod admin;
mod app;
mod portal;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use axum::http::header::{AUTHORIZATION, COOKIE};
use clap::Parser;
use tower_cross_api::PolicyHandle;
use tower_cross_api::source::FileSource;
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
    /// PostgreSQL as the source of truth instead of a file (needs the `postgres` feature);
    /// an empty database is seeded with the demo policy.
    #[arg(long, value_name = "URL", conflicts_with = "policy")]
    database_url: Option<String>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,tower_cross_api=debug"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let args = Args::parse();

    let policies = PolicyHandle::new();
    if let Some(url) = &args.database_url {
        let state = database_state(url, policies).await?;
        return serve(args.addr, state).await;
    }
    match &args.policy {
        Some(path) => {
            let source = FileSource::new(path, policies.clone())
                .with_interval(Duration::from_millis(args.reload_interval));
            let revision = source.load().await?;
            tracing::info!(path = %path.display(), revision, "published the policy file");
            tokio::spawn(source.watch());
        }
        None => {
            let revision = policies.publish_json(&portal::demo_policy())?;
            tracing::info!(revision, "published the demo policy");
        }
    }

    serve(args.addr, app::AppState::new(policies)).await
}

/// Migrates and seeds the database, follows it into `policies`, and administers it.
#[cfg(feature = "postgres")]
async fn database_state(
    url: &str,
    policies: PolicyHandle,
) -> Result<app::AppState, Box<dyn std::error::Error>> {
    use std::sync::Arc;
    use tower_cross_api::PolicyDocument;
    use tower_cross_api::source::{PostgresSource, PostgresStore};

    let store = PostgresStore::new(url)?;
    store.migrate().await?;
    if store
        .seed(&PolicyDocument::from_json(&portal::demo_policy())?)
        .await?
    {
        tracing::info!("seeded the empty policy database with the demo policy");
    }

    let source = PostgresSource::new(url, policies.clone())?;
    let revision = source.load().await?;
    tracing::info!(revision, "loaded the policy database");
    tokio::spawn(source.follow());
    Ok(app::AppState::new(policies).with_store(Arc::new(store)))
}

#[cfg(not(feature = "postgres"))]
async fn database_state(
    _url: &str,
    _policies: PolicyHandle,
) -> Result<app::AppState, Box<dyn std::error::Error>> {
    Err("--database-url needs the gateway built with `--features postgres`".into())
}

async fn serve(addr: SocketAddr, state: app::AppState) -> Result<(), Box<dyn std::error::Error>> {
    let router = app::app(state.clone())
        .merge(portal::routes(state))
        .layer(TraceLayer::new_for_http())
        .layer(SetSensitiveRequestHeadersLayer::new([
            AUTHORIZATION,
            COOKIE,
        ]));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "gateway listening");
    axum::serve(listener, router).await?;
    Ok(())
}
