//! A soak of the gate under load: the real layer served in-process over HTTP/1.1 and HTTP/2,
//! driven from many connections with allowed, denied, malformed and end-user requests while a
//! publisher replaces the policy every millisecond or so.
//!
//! Every answer is checked against the policy of the revision that decided it (the target
//! and the soak's rejection echo it in a header), and that revision must lie between the
//! ones published before the request left and after its answer came back. The soak fails on
//! a single wrong answer, a transport error, or resident memory that grows more than the
//! stated bound after warm-up.
//!
//! ```text
//! cargo run --release --example soak -- --seconds 600
//! ```

mod load;
mod server;
mod stats;
mod world;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use tower_cross_api::PolicyHandle;

/// Soaks the cross-API gate under load while its policy changes.
#[derive(Debug, Parser)]
struct Args {
    /// How long to drive load, in seconds.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// HTTP/1.1 keep-alive connections, one request in flight on each.
    #[arg(long, default_value_t = 16)]
    http1: usize,
    /// HTTP/2 connections.
    #[arg(long, default_value_t = 4)]
    http2: usize,
    /// Requests in flight on each HTTP/2 connection.
    #[arg(long, default_value_t = 8)]
    streams: usize,
    /// Pause between two published revisions, in milliseconds.
    #[arg(long, default_value_t = 1)]
    publish_every_ms: u64,
    /// Seconds of load after which resident memory is taken as warm (at most a quarter of
    /// the run).
    #[arg(long, default_value_t = 10)]
    warmup: u64,
    /// How much resident memory may grow after warm-up, in MiB, before the soak fails.
    #[arg(long, default_value_t = 16)]
    max_rss_growth_mib: u64,
}

#[tokio::main]
async fn main() -> Result<ExitCode, Box<dyn std::error::Error>> {
    let args = Args::parse();
    let rss_start = stats::resident_kib();

    let policies = PolicyHandle::new();
    policies.publish_json(&world::document(1))?;
    let addr = server::start(policies.clone()).await?;

    let started = Instant::now();
    let until = started + Duration::from_secs(args.seconds);
    let published = Arc::new(AtomicU64::new(1));
    let publisher = tokio::spawn(publish(
        policies,
        published.clone(),
        until,
        Duration::from_millis(args.publish_every_ms),
    ));
    let warmup = Duration::from_secs(args.warmup.min(args.seconds / 4));
    let rss_warm = tokio::spawn(async move {
        tokio::time::sleep(warmup).await;
        stats::resident_kib()
    });

    let tally = load::run(load::Plan {
        addr,
        http1: args.http1,
        http2: args.http2,
        streams: args.streams,
        until,
        published: published.clone(),
    })
    .await?;
    let elapsed = started.elapsed();
    let revisions = publisher.await??;
    let rss_warm = rss_warm.await?;
    let rss_end = stats::resident_kib();

    let growth_kib = rss_end.saturating_sub(rss_warm);
    let bound_kib = args.max_rss_growth_mib * 1024;
    report(
        &args,
        &tally,
        elapsed,
        revisions,
        [rss_start, rss_warm, rss_end],
    );

    let mut failures = Vec::new();
    if tally.requests == 0 {
        failures.push(String::from("no request was answered"));
    }
    if tally.wrong > 0 {
        failures.push(format!("{} wrong answers", tally.wrong));
    }
    if tally.transport_errors > 0 {
        failures.push(format!("{} transport errors", tally.transport_errors));
    }
    if growth_kib > bound_kib {
        failures.push(format!(
            "resident memory grew by {} after warm-up, more than {}",
            mib(growth_kib),
            mib(bound_kib)
        ));
    }

    if failures.is_empty() {
        println!("soak: PASS");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("soak: FAIL: {}", failures.join("; "));
        Ok(ExitCode::FAILURE)
    }
}

/// Publishes revision after revision until `until`; returns the last one.
async fn publish(
    policies: PolicyHandle,
    published: Arc<AtomicU64>,
    until: Instant,
    every: Duration,
) -> Result<u64, tower_cross_api::PolicyError> {
    let mut revision = published.load(Ordering::SeqCst);

    while Instant::now() < until {
        tokio::time::sleep(every).await;
        revision += 1;
        policies.publish_json(&world::document(revision))?;
        published.store(revision, Ordering::SeqCst);
    }
    Ok(revision)
}

fn report(
    args: &Args,
    tally: &load::Tally,
    elapsed: Duration,
    revisions: u64,
    [start, warm, end]: [u64; 3],
) {
    let seconds = elapsed.as_secs_f64();
    let latency = &tally.latency;

    println!(
        "soak: {seconds:.1} s, {} requests, {:.0} requests/s, over {} HTTP/1.1 connections \
         and {} HTTP/2 connections x {} streams",
        tally.requests,
        tally.requests as f64 / seconds,
        args.http1,
        args.http2,
        args.streams,
    );
    println!(
        "  latency: p50 {:?}, p99 {:?}, max {:?}",
        latency.quantile(0.50),
        latency.quantile(0.99),
        latency.max()
    );
    println!(
        "  revisions published: 1 to {revisions} (every {} ms); newest seen deciding: {}",
        args.publish_every_ms, tally.newest_revision_seen
    );
    println!(
        "  answers: {} allowed and {} denied linked calls, {} other-tenant, {} unknown-source, \
         {} malformed, {} end-user",
        tally.allowed,
        tally.denied,
        tally.other_tenant,
        tally.unknown_source,
        tally.malformed,
        tally.end_user
    );
    println!(
        "  wrong answers: {}; transport errors: {}",
        tally.wrong, tally.transport_errors
    );
    println!(
        "  resident memory: start {}, warm {}, end {} (growth after warm-up {}, bound {} MiB)",
        mib(start),
        mib(warm),
        mib(end),
        mib(end.saturating_sub(warm)),
        args.max_rss_growth_mib
    );
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}
