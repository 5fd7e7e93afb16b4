import Foundation
import Glibc

/// Returns the number of open fds of this process (/proc/self/fd).
func openFDCount() -> Int {
    ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []).count
}

/// Returns pids of this process's children in state Z, from /proc/self/task/*/children.
func zombieChildren() -> [Int32] {
    let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
    var zombies: [Int32] = []
    for task in tasks {
        let children = (try? String(contentsOfFile: "/proc/self/task/\(task)/children", encoding: .utf8)) ?? ""
        for pid in children.split(separator: " ").compactMap({ Int32($0) }) where processState(pid) == "Z" {
            zombies.append(pid)
        }
    }
    return zombies
}

/// Returns the state letter from /proc/PID/stat, or nil when the process is gone.
func processState(_ pid: Int32) -> Character? {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let close = stat.lastIndex(of: ")")
    else { return nil }
    return stat[close...].dropFirst(2).first
}
