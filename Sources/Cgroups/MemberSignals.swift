import CSystem
import Glibc

/// Sends `signal` to every task `readMembers` lists, through a pidfd per task so that a PID
/// recycled after the list was read is never signalled: each pidfd is opened first, then the
/// list is read again, and only pidfds whose PID is still a member get the signal
/// (pidfd_open(2), pidfd_send_signal(2)). A task that exits in between yields ESRCH, ignored.
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
