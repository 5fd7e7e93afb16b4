import GRPCLite

/// The server interceptor that applies the RBAC rules to every call before its method runs.
struct RBACInterceptor {
    /// The `ServerCallContext.userInfo` key under which an admitted call's `Caller` is stored.
    static let callerKey = "jobd.caller"

    let logger: Logger

    /// Returns nil to let the call continue, with its `Caller` stored in the context, or the
    /// PERMISSION_DENIED status to end it with.
    func intercept(_ context: ServerCallContext) -> Status? {
        let peer = context.peer
        let roleText = peer.utf8StringExtension(oid: RoleSet.extensionOID)
        let roleExtensionType = roleText == nil ? peer.extensionValue(oid: RoleSet.extensionOID).map(derTypeName) : nil

        let decision = Authorization.decide(
            method: context.method, commonName: peer.commonName, roleText: roleText,
            commonNameCount: commonNameCount(inSubject: peer.subject), roleExtensionType: roleExtensionType)
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
