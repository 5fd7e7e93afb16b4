import Glibc
import Reactor

/// TCP socket calls for the transport, each named after its kernel call and run through
/// `Syscall` for the errno policy. Every socket is non-blocking and close-on-exec.
enum Socket {
    /// A socket address with its printable form, e.g. `127.0.0.1:50051` or `[::1]:50051`.
    struct Address {
        var storage = sockaddr_storage()
        var length = socklen_t(0)

        var family: Int32 { Int32(storage.ss_family) }

        var host: String {
            var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
            var copy = storage
            withUnsafeMutablePointer(to: &copy) { pointer in
                if family == AF_INET6 {
                    pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) {
                        _ = inet_ntop(AF_INET6, &$0.pointee.sin6_addr, &buffer, socklen_t(buffer.count))
                    }
                } else {
                    pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
                        _ = inet_ntop(AF_INET, &$0.pointee.sin_addr, &buffer, socklen_t(buffer.count))
                    }
                }
            }
            return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }

        var port: UInt16 {
            var copy = storage
            return withUnsafeMutablePointer(to: &copy) { pointer in
                pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin_port) }
            }
        }

        var description: String {
            family == AF_INET6 ? "[\(host)]:\(port)" : "\(host):\(port)"
        }
    }

    /// Resolves `host` (a name or an IP literal) to TCP addresses with getaddrinfo(3).
    static func resolve(host: String, port: UInt16) throws -> [Address] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_family = AF_UNSPEC
        var list: UnsafeMutablePointer<addrinfo>?
        let result = getaddrinfo(host, String(port), &hints, &list)
        guard result == 0, let list else {
            throw ResolveError(host: host, reason: String(cString: gai_strerror(result)))
        }
        defer { freeaddrinfo(list) }

        var addresses: [Address] = []
        var entry: UnsafeMutablePointer<addrinfo>? = list
        while let current = entry {
            var address = Address()
            address.length = current.pointee.ai_addrlen
            withUnsafeMutableBytes(of: &address.storage) { storage in
                storage.copyMemory(
                    from: UnsafeRawBufferPointer(start: current.pointee.ai_addr, count: Int(current.pointee.ai_addrlen))
                )
            }
            addresses.append(address)
            entry = current.pointee.ai_next
        }
        return addresses
    }

    struct ResolveError: Error, CustomStringConvertible {
        let host: String
        let reason: String
        var description: String { "cannot resolve host \"\(host)\": \(reason)" }
    }

    /// Creates a non-blocking TCP socket for `family` (socket(2)).
    static func makeSocket(family: Int32) throws(SystemError) -> Int32 {
        let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        return try Syscall.call("socket") { socket(family, type, 0) }
    }

    /// Binds and listens on `address` with SO_REUSEADDR (bind(2), listen(2)). Returns the fd
    /// and the bound address, whose port the kernel picked when the requested port was 0.
    static func listen(on address: Address, backlog: Int32 = 1024) throws(SystemError) -> (fd: Int32, bound: Address) {
        let fd = try makeSocket(family: address.family)
        do {
            var one: Int32 = 1
            _ = try Syscall.call("setsockopt", "fd \(fd)") {
                setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            }
            var storage = address.storage
            _ = try Syscall.call("bind", address.description) {
                withUnsafePointer(to: &storage) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, address.length) }
                }
            }
            _ = try Syscall.call("listen", address.description) { Glibc.listen(fd, backlog) }
            return (fd, try localAddress(of: fd))
        } catch {
            Syscall.close(fd)
            throw error
        }
    }

    /// Accepts one pending connection as a non-blocking, close-on-exec fd, or returns nil when
    /// none is pending. It calls accept(2) and then fcntl(2) because Swift's Glibc module
    /// lacks accept4, and the loop thread spawns no process in between.
    static func accept(from listener: Int32) throws(SystemError) -> (fd: Int32, peer: Address)? {
        var peer = Address()
        peer.length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let fd = try Syscall.callNonBlocking("accept", "fd \(listener)") {
            withUnsafeMutablePointer(to: &peer.storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.accept(listener, $0, &peer.length) }
            }
        }
        guard let fd else { return nil }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        do {
            try Syscall.setNonBlocking(fd)
        } catch {
            Syscall.close(fd)
            throw error
        }
        var one: Int32 = 1
        // gRPC frames are small and latency-bound; Nagle's delay would hold back replies.
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        return (fd, peer)
    }

    /// Starts a non-blocking connect (connect(2)). Returns true when it completed at once, and
    /// false while it is in progress, in which case the fd becomes writable when it ends.
    static func connect(_ fd: Int32, to address: Address) throws(SystemError) -> Bool {
        var storage = address.storage
        let result = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, address.length) }
        }
        if result == 0 { return true }
        if errno == EINPROGRESS || errno == EINTR { return false }
        throw SystemError(errno: errno, call: "connect", subject: address.description)
    }

    /// Returns the pending error of a socket, 0 when none (getsockopt(2) SO_ERROR).
    static func pendingError(_ fd: Int32) -> Int32 {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &value, &length) == 0 else { return errno }
        return value
    }

    static func setNoDelay(_ fd: Int32) {
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    /// Returns the address a socket is bound to (getsockname(2)).
    static func localAddress(of fd: Int32) throws(SystemError) -> Address {
        var address = Address()
        address.length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = try Syscall.call("getsockname", "fd \(fd)") {
            withUnsafeMutablePointer(to: &address.storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &address.length) }
            }
        }
        return address
    }
}
