/// Formats `value` with one decimal place.
func format1(_ value: Double) -> String {
    let tenths = Int((value * 10).rounded())
    return "\(tenths / 10).\(abs(tenths % 10))"
}

/// Prints one result line: the benchmark name and `key=value` fields, for perf/run to parse.
func report(_ name: String, _ fields: [(String, String)]) {
    print((["result", name] + fields.map { "\($0.0)=\($0.1)" }).joined(separator: " "))
}

/// Formats `seconds` with three decimal places.
func formatSeconds(_ seconds: Double) -> String {
    let millis = Int((seconds * 1000).rounded())
    let fraction = String(millis % 1000)
    return "\(millis / 1000)." + String(repeating: "0", count: 3 - fraction.count) + fraction
}
