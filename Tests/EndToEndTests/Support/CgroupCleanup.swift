import Foundation

/// Removes the cgroup subtree a test's jobd created below this process's cgroup once jobd has exited,
/// so repeated test runs leave no empty directories behind.
enum CgroupCleanup {
    /// Removes every empty directory of the subtree `name` in each hierarchy, deepest first. rmdir(2)
    /// removes only cgroups without processes or children, so a busy cgroup stays and is not an error.
    static func removeSubtree(named name: String) {
        guard !name.isEmpty, !name.contains("/"), name.hasPrefix("jobworker") else {
            return
        }
        for directory in ownCgroupDirectories() {
            removeEmptyDirectories(directory + "/" + name)
        }
    }

    /// Returns this process's cgroup directory in each mounted hierarchy, from /proc/self/cgroup.
    static func ownCgroupDirectories() -> [String] {
        guard let text = try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8) else {
            return []
        }
        var directories: [String] = []
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else {
                continue
            }
            let controllers = String(fields[1])
            let path = fields[2] == "/" ? "" : String(fields[2])
            if controllers.isEmpty {
                directories += ["/sys/fs/cgroup/unified" + path, "/sys/fs/cgroup" + path]
            } else {
                let mount = controllers.hasPrefix("name=") ? String(controllers.dropFirst(5)) : controllers
                directories.append("/sys/fs/cgroup/" + mount + path)
            }
        }
        return directories
    }

    private static func removeEmptyDirectories(_ path: String) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
            return
        }
        let children = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        for child in children {
            var childIsDirectory: ObjCBool = false
            let childPath = path + "/" + child
            if FileManager.default.fileExists(atPath: childPath, isDirectory: &childIsDirectory),
                childIsDirectory.boolValue
            {
                removeEmptyDirectories(childPath)
            }
        }
        rmdir(path)
    }
}
