import CSystem
import Glibc

/// Sends `signal` to every task `readMembers` lists, through one pidfd per task (pidfd_open(2),
/// pidfd_send_signal(2)). A PID recycled after the list was read is never signalled, because
/// each pidfd is opened first and only those whose PID is still in a second reading of the
/// list get the signal. A task that exits in between fails with ESRCH, which is ignored.
///
/// - Returns: the PIDs signalled.
@discardableResult
func signalMembers(_ signal: Int32, readMembers: () throws -> [Int32]) throws -> [Int32] {
    var pidfds: [(pid: Int32, fd: Int32)] = []
    defer {
        for entry in pidfds {
            close(entry.fd)
        }
    }
    for pid in try readMembers() {
        let fd = cs_pidfd_open(pid, 0)
        if fd >= 0 {
            pidfds.append((pid, fd))
        } else if errno != ESRCH {
            throw CgroupError(operation: "pidfd_open", file: "pid \(pid)", errno: errno)
        }
    }

    let stillMembers = Set(try readMembers())
    var signalled: [Int32] = []
    for entry in pidfds where stillMembers.contains(entry.pid) {
        if cs_pidfd_send_signal(entry.fd, signal, 0) == 0 {
            signalled.append(entry.pid)
        } else if errno != ESRCH {
            throw CgroupError(operation: "pidfd_send_signal", file: "pid \(entry.pid)", errno: errno)
        }
    }
    return signalled
}
