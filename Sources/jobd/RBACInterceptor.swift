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
        var roleText = peer.utf8StringExtension(oid: RoleSet.extensionOID)
        if roleText == nil && peer.extensionValue(oid: RoleSet.extensionOID) != nil {
            roleText = "(not a UTF8String)"
        }

        switch Authorization.decide(method: context.method, commonName: peer.commonName, roleText: roleText) {
        case .allow(let caller):
            context.userInfo[Self.callerKey] = caller
            logger.debug("call", ["method": context.method, "peer": caller.identity, "roles": caller.roles])
            return nil
        case .deny(let reason):
            logger.info("call denied", ["method": context.method, "peer": peer.description, "reason": reason])
            return StatusMapping.permissionDenied(reason)
        }
    }
}
