import GRPCLite

/// The server interceptor that applies the RBAC rules to every call before its method runs.
/// Loop thread only.
final class RBACInterceptor {
    /// The `ServerCallContext.userInfo` key under which an admitted call's `Caller` is stored.
    static let callerKey = "jobd.caller"

    /// The inputs of a decision: the certificate's subject, CN and role extension, and the method.
    private struct DecisionKey: Hashable {
        let subject: String
        let commonName: String?
        let roleExtension: [UInt8]?
        let method: String
    }

    /// Bound on cached decisions; the cache starts over when it is full.
    private static let maxCachedDecisions = 4096

    private let logger: Logger
    /// Decisions by certificate and method. Parsing the subject and the role text on every call
    /// took a fifth of jobd's CPU time under a load of small calls, and the outcome only changes
    /// with the certificate.
    private var decisions: [DecisionKey: Authorization.Decision] = [:]

    init(logger: Logger) {
        self.logger = logger
    }

    /// Returns nil to let the call continue, with its `Caller` stored in the context, or the
    /// PERMISSION_DENIED status to end it with.
    func intercept(_ context: ServerCallContext) -> Status? {
        let peer = context.peer
        let key = DecisionKey(
            subject: peer.subject, commonName: peer.commonName,
            roleExtension: peer.extensionValue(oid: RoleSet.extensionOID), method: context.method)
        let decision: Authorization.Decision
        if let cached = decisions[key] {
            decision = cached
        } else {
            decision = Self.decide(context.method, peer)
            if decisions.count >= Self.maxCachedDecisions {
                decisions.removeAll(keepingCapacity: true)
            }
            decisions[key] = decision
        }

        switch decision {
        case .allow(let caller):
            context.userInfo[Self.callerKey] = caller
            logger.debug("call", ["method": context.method, "peer": caller.identity, "roles": caller.roles])
            return nil
        case .deny(let reason):
            logger.info("call denied", ["method": context.method, "peer": peer.description, "reason": reason])
            return StatusMapping.bounded(StatusMapping.permissionDenied(reason))
        }
    }

    private static func decide(_ method: String, _ peer: PeerIdentity) -> Authorization.Decision {
        let roleText = peer.utf8StringExtension(oid: RoleSet.extensionOID)
        let roleExtensionType = roleText == nil ? peer.extensionValue(oid: RoleSet.extensionOID).map(derTypeName) : nil
        return Authorization.decide(
            method: method, commonName: peer.commonName, roleText: roleText,
            commonNameCount: commonNameCount(inSubject: peer.subject), roleExtensionType: roleExtensionType)
    }
}

/// Returns the ASN.1 name of a DER value's universal tag (ITU-T X.680 section 8.6), e.g. "IA5String",
/// for messages about a role extension of the wrong type.
func derTypeName(_ der: [UInt8]) -> String {
    let names: [UInt8: String] = [
        0x04: "OCTET STRING", 0x0C: "UTF8String", 0x13: "PrintableString", 0x14: "T61String",
        0x16: "IA5String", 0x1A: "VisibleString", 0x1C: "UniversalString", 0x1E: "BMPString",
        0x30: "SEQUENCE", 0x31: "SET",
    ]
    guard let tag = der.first else { return "empty value" }
    return names[tag] ?? "ASN.1 tag 0x\(String(tag, radix: 16))"
}
