//! Unit conversions of upstream `pkg/kubelet/cm` (helpers_linux.go) and the cgroup v2 shim.

/// Smallest `cpu.shares` the kernel accepts (and what BestEffort gets).
pub const MIN_SHARES: u64 = 2;
/// Largest `cpu.shares`.
pub const MAX_SHARES: u64 = 262_144;
/// `cpu.shares` of one full CPU.
pub const SHARES_PER_CPU: u64 = 1024;
/// Millicores in one CPU.
pub const MILLI_CPU_TO_CPU: u64 = 1000;
/// CFS period the kubelet uses, microseconds.
pub const QUOTA_PERIOD: u64 = 100_000;
/// Smallest CFS quota, microseconds.
pub const MIN_QUOTA_PERIOD: i64 = 1000;

/// Converts a cpu request in millicores to `cpu.shares` (0 -> minimum shares).
pub fn milli_cpu_to_shares(milli_cpu: u64) -> u64 {
    if milli_cpu == 0 {
        return MIN_SHARES;
    }
    let shares = milli_cpu.saturating_mul(SHARES_PER_CPU) / MILLI_CPU_TO_CPU;
    shares.clamp(MIN_SHARES, MAX_SHARES)
}

/// Converts a cpu limit in millicores to a CFS quota for `period` microseconds; 0 means no
/// limit (returns 0, the caller leaves the quota unset).
pub fn milli_cpu_to_quota(milli_cpu: u64, period: u64) -> i64 {
    if milli_cpu == 0 {
        return 0;
    }
    let quota = (milli_cpu.saturating_mul(period) / MILLI_CPU_TO_CPU) as i64;
    quota.max(MIN_QUOTA_PERIOD)
}

/// Converts v1 `cpu.shares` [2, 262144] to v2 `cpu.weight` [1, 10000], the formula of the
/// OCI v1-to-v2 conversion that upstream's runc/libcontainer cgroup v2 driver applies.
pub fn cpu_shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    let s = shares.clamp(MIN_SHARES, MAX_SHARES);
    1 + ((s - 2) * 9999) / 262_142
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_follow_upstream_table() {
        assert_eq!(milli_cpu_to_shares(0), 2);
        assert_eq!(milli_cpu_to_shares(1), 2);
        assert_eq!(milli_cpu_to_shares(100), 102);
        assert_eq!(milli_cpu_to_shares(500), 512);
        assert_eq!(milli_cpu_to_shares(1000), 1024);
        assert_eq!(milli_cpu_to_shares(1500), 1536);
        assert_eq!(milli_cpu_to_shares(1_000_000), 262_144);
    }

    #[test]
    fn quota_has_a_floor_and_zero_means_unlimited() {
        assert_eq!(milli_cpu_to_quota(0, QUOTA_PERIOD), 0);
        assert_eq!(milli_cpu_to_quota(5, QUOTA_PERIOD), 1000);
        assert_eq!(milli_cpu_to_quota(10, QUOTA_PERIOD), 1000);
        assert_eq!(milli_cpu_to_quota(250, QUOTA_PERIOD), 25_000);
        assert_eq!(milli_cpu_to_quota(2000, QUOTA_PERIOD), 200_000);
    }

    #[test]
    fn weight_maps_the_share_range_onto_1_to_10000() {
        assert_eq!(cpu_shares_to_weight(2), 1);
        assert_eq!(cpu_shares_to_weight(1024), 39);
        assert_eq!(cpu_shares_to_weight(262_144), 10_000);
        assert_eq!(cpu_shares_to_weight(102), 4);
    }
}
