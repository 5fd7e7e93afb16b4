import COpenSSL

/// Reads OpenSSL's per-thread error queue (ERR_get_error(3)).
enum OpenSSLErrors {
    /// Empties the queue and returns its reasons joined by "; ", or `fallback` when empty.
    static func drain(fallback: String = "no detail from OpenSSL") -> String {
        var reasons: [String] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            if let reason = ERR_reason_error_string(code) {
                reasons.append(String(cString: reason))
            } else {
                reasons.append("error 0x\(String(code, radix: 16))")
            }
        }
        return reasons.isEmpty ? fallback : reasons.joined(separator: "; ")
    }

    static func clear() {
        ERR_clear_error()
    }
}
