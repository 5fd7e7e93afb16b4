/// The cgroup interface in use: v2 is the unified hierarchy, v1 one hierarchy per controller.
public enum CgroupVersion: Equatable, Sendable {
    case v1
    case v2
}
