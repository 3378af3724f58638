//! Counting: a small log-linear latency histogram, and the process's resident memory.

use std::time::Duration;

/// Sub-buckets per power of two: about 3 % precision.
const SUB: u32 = 32;

/// Request latencies, in microseconds, in constant memory.
#[derive(Clone, Debug)]
pub(crate) struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: vec![0; 64 * SUB as usize],
            total: 0,
            max: 0,
        }
    }
}

impl Histogram {
    /// Counts one latency.
    pub(crate) fn record(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);

        self.counts[bucket(micros)] += 1;
        self.total += 1;
        self.max = self.max.max(micros);
    }

    /// Adds another histogram's counts.
    pub(crate) fn merge(&mut self, other: &Self) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// The latency below which `quantile` of the requests finished, at bucket precision.
    pub(crate) fn quantile(&self, quantile: f64) -> Duration {
        let rank = (quantile * self.total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;

        for (index, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Duration::from_micros(lower_bound(index));
            }
        }
        Duration::from_micros(self.max)
    }

    /// The slowest request.
    pub(crate) fn max(&self) -> Duration {
        Duration::from_micros(self.max)
    }
}

fn bucket(micros: u64) -> usize {
    if micros < u64::from(SUB) {
        return micros as usize;
    }
    let exponent = 63 - micros.leading_zeros();
    let mantissa = (micros >> (exponent - 5)) & u64::from(SUB - 1);
    ((exponent - 4) * SUB) as usize + mantissa as usize
}

fn lower_bound(bucket: usize) -> u64 {
    let sub = SUB as usize;
    if bucket < sub {
        return bucket as u64;
    }
    let exponent = (bucket / sub + 4) as u32;
    let mantissa = (bucket % sub) as u64;
    (u64::from(SUB) + mantissa) << (exponent - 5)
}

/// The process's resident memory in KiB, from `/proc/self/status` (`VmRSS`); 0 elsewhere.
pub(crate) fn resident_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();

    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_keep_their_lower_bound() {
        for micros in [0, 1, 31, 32, 33, 100, 1_000, 65_535, 1 << 40] {
            let low = lower_bound(bucket(micros));
            assert!(
                low <= micros && micros - low <= micros / 16,
                "{micros} → {low}"
            );
        }
    }
}
