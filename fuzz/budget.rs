//! Runs one target for a number of cases or of seconds, in rounds of fresh random cases.
//!
//! - `FUZZ_SECONDS=N`: run each target for about `N` seconds (what `fuzz/run.sh` sets).
//! - `FUZZ_CASES=N`: without `FUZZ_SECONDS`, run `N` cases (default 512, for `cargo test`).
//! - `FUZZ_SEED=N`: start from this seed, to replay a failure; random otherwise.
//!
//! A failing case is shrunk by proptest to a small input, printed with the seed and round
//! that replay it, and fails the test.

use std::hash::{BuildHasher, RandomState};
use std::time::{Duration, Instant};

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseResult, TestError, TestRng, TestRunner};

/// Cases per round: each round has its own seed, printed on failure.
const ROUND: u32 = 256;

/// Cases run by `cargo test` when no budget is given.
const DEFAULT_CASES: u64 = 512;

/// Runs `property` on inputs from `strategy` within the budget set by the environment.
pub(crate) fn run<S>(name: &str, strategy: S, property: impl Fn(S::Value) -> TestCaseResult)
where
    S: Strategy,
{
    let seconds = number("FUZZ_SECONDS");
    let cases = number("FUZZ_CASES").unwrap_or(DEFAULT_CASES);
    let seed = number("FUZZ_SEED").unwrap_or_else(|| RandomState::new().hash_one(name));
    let first_round = number("FUZZ_ROUND").unwrap_or(0);
    let config = Config {
        cases: ROUND,
        failure_persistence: None,
        max_shrink_iters: 20_000,
        ..Config::default()
    };

    let started = Instant::now();
    let deadline = seconds.map(|seconds| started + Duration::from_secs(seconds));
    let mut done = 0u64;
    let mut round = first_round;
    loop {
        let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &round_seed(seed, round));
        let mut runner = TestRunner::new_with_rng(config.clone(), rng);

        match runner.run(&strategy, &property) {
            Ok(()) => {}
            Err(TestError::Fail(reason, input)) => panic!(
                "{name}: {reason}\nminimal input: {input:#?}\n\
                 replay with: FUZZ_SEED={seed} FUZZ_ROUND={round} cargo test --test fuzz {name}"
            ),
            Err(TestError::Abort(reason)) => panic!("{name}: aborted: {reason}"),
        }

        done += u64::from(ROUND);
        round += 1;
        let finished = match deadline {
            Some(deadline) => Instant::now() >= deadline,
            None => done >= cases,
        };
        if finished {
            break;
        }
    }

    let elapsed = started.elapsed();
    eprintln!(
        "fuzz {name}: {done} cases in {:.1} s ({:.0}/s), seed {seed}, \
         rounds {first_round}..{round}",
        elapsed.as_secs_f64(),
        done as f64 / elapsed.as_secs_f64().max(1e-9),
    );
}

fn number(variable: &str) -> Option<u64> {
    let value = std::env::var(variable).ok()?;
    Some(
        value
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{variable} must be a whole number, not {value:?}")),
    )
}

fn round_seed(seed: u64, round: u64) -> [u8; 32] {
    let mut bytes = [0; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes[8..16].copy_from_slice(&round.to_le_bytes());
    bytes[16..24].copy_from_slice(b"tcapifuz");
    bytes
}
