import Foundation
import NetworkExtension
import os.log

/// The iOS host of the engine. The containing app saves the profile in the
/// tunnel's `NETunnelProviderProtocol.providerConfiguration` (see
/// README.md); key bytes are better kept in the keychain and read here.
///
/// Packets from `packetFlow` go to `Engine.sendPacket`, datagrams from the
/// UDP socket to `Engine.receiveDatagram`, and a timer calls
/// `Engine.handleTimeout` when `Engine.nextTimeoutMs` comes due. All three
/// run on one serial queue; the engine calls `Host` back on it.
final class PacketTunnelProvider: NEPacketTunnelProvider {
    private let queue = DispatchQueue(label: "org.chantry.tunnel")
    private let log = OSLog(subsystem: "org.chantry.tunnel", category: "engine")
    private var engine: Engine?
    private var socket: UDPSocket?
    private var socketSource: DispatchSourceRead?
    private var timer: DispatchSourceTimer?

    /// Where the engine's output goes.
    private final class Host: EngineHost {
        weak var provider: PacketTunnelProvider?

        func sendDatagram(to: Endpoint, datagram: Data) throws {
            guard let socket = provider?.socket else {
                throw HostError.Failed(message: "no socket")
            }
            do {
                try socket.send(datagram, to: to.ip, port: to.port)
            } catch {
                throw HostError.Failed(message: "send to \(to.ip):\(to.port): \(error)")
            }
        }

        func deliverPacket(packet: Data) throws {
            guard let flow = provider?.packetFlow else {
                throw HostError.Failed(message: "no packet flow")
            }
            flow.writePackets([packet], withProtocols: [NSNumber(value: AF_INET)])
        }

        func onEvent(event: EngineEvent) throws {
            provider?.handle(event)
        }
    }

    override func startTunnel(options: [String: NSObject]?,
                              completionHandler: @escaping (Error?) -> Void) {
        queue.async {
            do {
                let profile = try self.loadProfile()
                let host = Host()
                host.provider = self
                self.socket = try UDPSocket()
                let engine = try Engine(profile: profile, host: host)
                self.engine = engine
                self.setTunnelNetworkSettings(self.networkSettings(engine.settings())) { error in
                    self.queue.async {
                        if let error = error {
                            completionHandler(error)
                            return
                        }
                        self.startReading()
                        self.readPackets()
                        self.schedule()
                        // Up as far as the system is concerned; the key
                        // exchange goes on (events tell the state).
                        completionHandler(nil)
                    }
                }
            } catch {
                os_log("cannot start: %{public}@", log: self.log, type: .error, "\(error)")
                completionHandler(error)
            }
        }
    }

    override func stopTunnel(with reason: NEProviderStopReason,
                             completionHandler: @escaping () -> Void) {
        queue.async {
            self.timer?.cancel()
            self.socketSource?.cancel()
            self.engine?.shutdown() // wipes every key
            self.engine = nil
            self.socket = nil
            completionHandler()
        }
    }

    /// The profile from the provider configuration: either `conf` (text)
    /// and `secret` (32 bytes), or `vicar` (file), `passphrase` and
    /// `tunnel`.
    private func loadProfile() throws -> Profile {
        guard let proto = protocolConfiguration as? NETunnelProviderProtocol,
              let cfg = proto.providerConfiguration else {
            throw NEVPNError(.configurationInvalid)
        }
        if let text = cfg["conf"] as? String {
            let keys = ProfileKeys(secret: cfg["secret"] as? Data, kek: nil,
                                   cathedralSecret: nil, cathedralCosk: nil)
            return .conf(text: text, keys: keys)
        }
        if let file = cfg["vicar"] as? Data, let pass = cfg["passphrase"] as? String,
           let tunnel = cfg["tunnel"] as? String {
            return .vicar(file: file, passphrase: pass, tunnel: tunnel)
        }
        throw NEVPNError(.configurationInvalid)
    }

    /// Address, MTU and routes of the utun interface.
    private func networkSettings(_ s: TunnelSettings) -> NEPacketTunnelNetworkSettings {
        let remote = s.peer?.ip ?? s.cathedral?.ip ?? "127.0.0.1"
        let settings = NEPacketTunnelNetworkSettings(tunnelRemoteAddress: remote)
        let v4 = NEIPv4Settings(addresses: [s.address], subnetMasks: [mask(s.prefix)])
        v4.includedRoutes = s.routes.map {
            NEIPv4Route(destinationAddress: $0.address, subnetMask: mask($0.prefix))
        }
        settings.ipv4Settings = v4
        settings.mtu = NSNumber(value: s.mtu)
        return settings
    }

    private func mask(_ prefix: UInt8) -> String {
        let bits: UInt32 = prefix == 0 ? 0 : ~UInt32(0) << (32 - UInt32(min(prefix, 32)))
        return [24, 16, 8, 0].map { String((bits >> $0) & 0xff) }.joined(separator: ".")
    }

    /// Clear packets from the system into the engine.
    private func readPackets() {
        packetFlow.readPackets { packets, protocols in
            self.queue.async {
                guard let engine = self.engine else { return }
                for (p, proto) in zip(packets, protocols) where proto.int32Value == AF_INET {
                    _ = engine.sendPacket(packet: p)
                }
                self.schedule()
                self.readPackets()
            }
        }
    }

    /// Datagrams from the socket into the engine.
    private func startReading() {
        guard let socket = socket else { return }
        let source = DispatchSource.makeReadSource(fileDescriptor: socket.fd, queue: queue)
        source.setEventHandler { [weak self] in
            guard let self = self, let engine = self.engine else { return }
            while let (data, ip, port) = socket.receive() {
                _ = engine.receiveDatagram(from: Endpoint(ip: ip, port: port), datagram: data)
            }
            self.schedule()
        }
        source.resume()
        socketSource = source
    }

    /// (Re)arms the timer for the engine's next deadline.
    private func schedule() {
        guard let engine = engine else { return }
        timer?.cancel()
        let ms = engine.nextTimeoutMs() ?? 1000
        let t = DispatchSource.makeTimerSource(queue: queue)
        t.schedule(deadline: .now() + .milliseconds(Int(min(ms, 1000))))
        t.setEventHandler { [weak self] in
            guard let self = self, let engine = self.engine else { return }
            if engine.nextTimeoutMs() == 0 {
                engine.handleTimeout()
            }
            self.schedule()
        }
        t.resume()
        timer = t
    }

    /// Events: logged (an app would show the state through
    /// `handleAppMessage` or a shared container).
    private func handle(_ event: EngineEvent) {
        switch event {
        case .state(let state):
            os_log("state %{public}@", log: log, "\(state)")
        case .error(let message):
            os_log("%{public}@", log: log, type: .error, message)
        default:
            os_log("%{public}@", log: log, "\(event)")
        }
    }
}
