//! The Cross-API access settings page of the example gateway: its answers over HTTP on the
//! file source, and the page in a real browser (headless Chromium driven through WebDriver)
//! on PostgreSQL, since the file source is read-only. The browser test is skipped, saying
//! so, without the database or without Chromium.

#![allow(dead_code)]

#[path = "../../examples/gateway/app.rs"]
mod app;
#[cfg(feature = "postgres")]
mod browser;
#[cfg(feature = "postgres")]
#[path = "../support/database.rs"]
mod database;
mod http;
mod pages;
#[path = "../../examples/gateway/portal.rs"]
mod portal;
#[cfg(feature = "postgres")]
mod settings;
#[path = "../support/skip.rs"]
mod skip;

#[cfg(feature = "postgres")]
use skip::say_skipped;

use std::net::SocketAddr;

use tokio::net::TcpListener;

/// The gateway's router with the portal's routes, as `main` builds it.
fn router(state: app::AppState) -> axum::Router {
    app::app(state.clone()).merge(portal::routes(state))
}

/// Serves `router` on a free loopback port.
async fn serve(router: axum::Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

/// Without the `postgres` feature the gateway has no writable source for the page to save to.
#[cfg(not(feature = "postgres"))]
#[test]
fn the_settings_page_in_a_real_browser() {
    skip::say_skipped(format_args!(
        "the_settings_page_in_a_real_browser: the page saves through PostgreSQL; run with \
         --features postgres"
    ));
}
