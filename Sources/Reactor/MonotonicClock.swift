import Glibc

/// CLOCK_MONOTONIC, the clock of every deadline in the reactor. All processes of a host
/// share it, so a timestamp written by a job can be compared with one read by jobd.
public enum MonotonicClock {
    /// Returns the current CLOCK_MONOTONIC time in nanoseconds (clock_gettime(2)).
    public static func nanoseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) &* 1_000_000_000 &+ UInt64(now.tv_nsec)
    }
}

extension Duration {
    /// The duration in whole nanoseconds, clamped at zero and at `UInt64.max`.
    var clampedNanoseconds: UInt64 {
        let (seconds, attoseconds) = components
        if seconds < 0 { return 0 }
        let (whole, overflow) = UInt64(seconds).multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return .max }
        let (total, overflowAgain) = whole.addingReportingOverflow(UInt64(attoseconds / 1_000_000_000))
        return overflowAgain ? .max : total
    }
}
