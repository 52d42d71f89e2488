import Darwin
import Foundation

/// The tunnel's one UDP socket (IPv4, any local port). A Network Extension's
/// own sockets do not go through its tunnel. One socket for every
/// destination keeps one NAT mapping for the cathedral and the peer.
final class UDPSocket {
    let fd: Int32

    init() throws {
        fd = socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP)
        guard fd >= 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        var any = sockaddr_in()
        any.sin_len = UInt8(MemoryLayout<sockaddr_in>.size)
        any.sin_family = sa_family_t(AF_INET)
        let r = withUnsafePointer(to: &any) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard r == 0 else {
            close(fd)
            throw POSIXError(.init(rawValue: errno) ?? .EIO)
        }
    }

    deinit { close(fd) }

    /// Sends `data` to `ip:port` (dotted IPv4).
    func send(_ data: Data, to ip: String, port: UInt16) throws {
        var dst = sockaddr_in()
        dst.sin_len = UInt8(MemoryLayout<sockaddr_in>.size)
        dst.sin_family = sa_family_t(AF_INET)
        dst.sin_port = port.bigEndian
        guard inet_pton(AF_INET, ip, &dst.sin_addr) == 1 else {
            throw POSIXError(.EINVAL)
        }
        let n = data.withUnsafeBytes { buf in
            withUnsafePointer(to: &dst) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, buf.baseAddress, buf.count, 0, $0,
                           socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
        guard n == data.count else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
    }

    /// One datagram and its sender, or nil when none is waiting.
    func receive() -> (Data, String, UInt16)? {
        var buf = [UInt8](repeating: 0, count: 2048)
        var src = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let n = withUnsafeMutablePointer(to: &src) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                recvfrom(fd, &buf, buf.count, MSG_DONTWAIT, $0, &len)
            }
        }
        guard n > 0 else { return nil }
        var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
        inet_ntop(AF_INET, &src.sin_addr, &text, socklen_t(INET_ADDRSTRLEN))
        return (Data(buf[0..<n]), String(cString: text), UInt16(bigEndian: src.sin_port))
    }
}
