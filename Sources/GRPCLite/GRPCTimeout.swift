/// The `grpc-timeout` header: an ASCII integer of at most 8 digits followed by a unit
/// (`H` hours, `M` minutes, `S` seconds, `m` milliseconds, `u` microseconds, `n` nanoseconds),
/// from the gRPC over HTTP/2 protocol, "Requests".
struct GRPCTimeout: Equatable {
    let duration: Duration

    init(_ duration: Duration) {
        self.duration = duration
    }

    /// Parses a header value; returns nil when the value does not follow the grammar.
    init?(headerValue: String) {
        let bytes = Array(headerValue.utf8)
        guard bytes.count >= 2, bytes.count <= 9, let unit = bytes.last else { return nil }

        var amount: Int64 = 0
        for byte in bytes.dropLast() {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            amount = amount * 10 + Int64(byte - UInt8(ascii: "0"))
        }

        switch unit {
        case UInt8(ascii: "H"): duration = .seconds(amount * 3600)
        case UInt8(ascii: "M"): duration = .seconds(amount * 60)
        case UInt8(ascii: "S"): duration = .seconds(amount)
        case UInt8(ascii: "m"): duration = .milliseconds(amount)
        case UInt8(ascii: "u"): duration = .microseconds(amount)
        case UInt8(ascii: "n"): duration = .nanoseconds(amount)
        default: return nil
        }
    }

    /// Returns the header value with the finest unit that fits in 8 digits, rounding up so
    /// the server never sees a shorter deadline than the client set.
    var headerValue: String {
        let nanoseconds = max(0, GRPCTimeout.nanoseconds(duration))
        let units: [(Character, Int64)] = [
            ("n", 1), ("u", 1_000), ("m", 1_000_000), ("S", 1_000_000_000), ("M", 60_000_000_000),
            ("H", 3_600_000_000_000),
        ]
        for (unit, size) in units {
            let amount = (nanoseconds + size - 1) / size
            if amount < 100_000_000 {
                return "\(amount)\(unit)"
            }
        }
        return "99999999H"
    }

    static func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        let (product, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? Int64.min : Int64.max }
        return product.addingReportingOverflow(attoseconds / 1_000_000_000).overflow
            ? Int64.max : product + attoseconds / 1_000_000_000
    }
}
