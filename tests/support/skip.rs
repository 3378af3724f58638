//! Saying that a test is skipped where whoever runs the tests sees it.

/// Says that a test is skipped and why, on standard error itself: the test harness keeps
/// what `println!` writes from a passing test to itself.
pub(crate) fn say_skipped(why: std::fmt::Arguments<'_>) {
    use std::io::Write;

    let _ = writeln!(std::io::stderr().lock(), "skipped {why}");
}
