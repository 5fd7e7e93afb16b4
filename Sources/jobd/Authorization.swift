import Foundation

/// A role granted by the client certificate's role extension.
enum Role: String, CaseIterable {
    case reader, writer, admin
}

/// The set of roles one certificate grants.
struct RoleSet: OptionSet, CustomStringConvertible {
    let rawValue: UInt8

    static let reader = RoleSet(rawValue: 1 << 0)
    static let writer = RoleSet(rawValue: 1 << 1)
    static let admin = RoleSet(rawValue: 1 << 2)

    /// The X.509 extension that carries the roles: a UUID-based OID (ITU-T X.667), value a DER UTF8String.
    static let extensionOID = "2.25.7848382311874025851451681593532974798"

    /// Parses the extension's text: one role or a comma-separated list, spaces around names ignored.
    /// Unknown names grant nothing, so a certificate minted for a newer role set still works for the
    /// roles this jobd recognises.
    init(parsing text: String) {
        var roles: RoleSet = []
        for name in text.split(separator: ",") {
            switch name.trimmingCharacters(in: .whitespaces) {
            case "reader": roles.insert(.reader)
            case "writer": roles.insert(.writer)
            case "admin": roles.insert(.admin)
            default: continue
            }
        }
        self = roles
    }

    init(rawValue: UInt8) {
        self.rawValue = rawValue
    }

    var description: String {
        let names = Role.allCases.filter { contains(RoleSet(role: $0)) }.map(\.rawValue)
        return names.isEmpty ? "none" : names.joined(separator: ",")
    }

    init(role: Role) {
        switch role {
        case .reader: self = .reader
        case .writer: self = .writer
        case .admin: self = .admin
        }
    }

    /// Returns true when these roles include `role` or a role above it (admin > writer > reader).
    func satisfies(_ role: Role) -> Bool {
        switch role {
        case .reader: !isDisjoint(with: [.reader, .writer, .admin])
        case .writer: !isDisjoint(with: [.writer, .admin])
        case .admin: contains(.admin)
        }
    }
}

/// The authenticated client of one call, as the RBAC check decided it.
struct Caller: Equatable {
    /// The client certificate's subject common name.
    let identity: String
    let roles: RoleSet

    /// Returns true when the caller may see a job owned by `owner`: admins see every job, readers and
    /// writers only the jobs their identity started.
    func canSee(owner: String) -> Bool {
        roles.contains(.admin) || owner == identity
    }
}

/// The RBAC rules: which role each method needs, decided in one place for every call.
enum Authorization {
    static let serviceName = "jobworker.v1.JobService"
    static let healthServiceName = "grpc.health.v1.Health"

    /// The outcome of the check: the caller to hand to the method, or the reason to reject with
    /// PERMISSION_DENIED.
    enum Decision: Equatable {
        case allow(Caller)
        case deny(String)
    }

    /// Returns the role a method needs; nil for methods any authenticated peer may call (the health
    /// check) and for methods jobd does not serve, which the server rejects with UNIMPLEMENTED.
    static func requiredRole(for method: String) -> Role? {
        switch method.hasPrefix("/") ? String(method.dropFirst()) : method {
        case "\(serviceName)/Start", "\(serviceName)/Stop":
            .writer
        case "\(serviceName)/Query", "\(serviceName)/List", "\(serviceName)/Stream":
            .reader
        default:
            nil
        }
    }

    /// Returns true for the gRPC health checking protocol's methods, allowed without a role.
    static func isHealthMethod(_ method: String) -> Bool {
        let name = method.hasPrefix("/") ? String(method.dropFirst()) : method
        return name.hasPrefix(healthServiceName + "/")
    }

    /// Decides whether the peer with certificate CN `commonName` and role extension text `roleText` may
    /// call `method`. A peer without a recognised role is denied every method but the health check.
    static func decide(method: String, commonName: String?, roleText: String?) -> Decision {
        guard let identity = commonName, !identity.isEmpty else {
            return .deny(
                "the client certificate has no subject common name (CN), which jobd uses as the identity: "
                    + "mint the certificate with a CN, e.g. -subj /CN=alice")
        }

        let roles = roleText.map(RoleSet.init(parsing:)) ?? []
        let caller = Caller(identity: identity, roles: roles)
        if isHealthMethod(method) {
            return .allow(caller)
        }

        let methodName = method.split(separator: "/").last.map(String.init) ?? method
        guard !roles.isEmpty else {
            let needed = requiredRole(for: method) ?? .reader
            let found = roleText.map { "has \"\($0)\", which names no known role" } ?? "has no role extension"
            return .deny(
                "\(methodName) needs the \(needed.rawValue) role (or admin), but the client certificate of "
                    + "\"\(identity)\" \(found): mint it with the extension \(RoleSet.extensionOID) set to "
                    + "reader, writer or admin")
        }

        guard let needed = requiredRole(for: method) else {
            return .allow(caller)
        }
        guard roles.satisfies(needed) else {
            return .deny(
                "\(methodName) needs the \(needed.rawValue) role (or admin), but the client certificate of "
                    + "\"\(identity)\" grants only \(roles): use a certificate with the \(needed.rawValue) role")
        }
        return .allow(caller)
    }
}
