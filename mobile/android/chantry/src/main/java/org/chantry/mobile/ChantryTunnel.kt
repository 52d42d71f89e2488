package org.chantry.mobile

import android.util.Log
import java.io.FileInputStream
import java.io.FileOutputStream
import java.io.IOException
import java.net.Inet4Address
import java.net.InetSocketAddress
import java.nio.ByteBuffer
import java.nio.channels.ClosedChannelException
import java.nio.channels.DatagramChannel
import java.util.concurrent.atomic.AtomicBoolean

/**
 * Drives one [Engine] with three threads: the TUN reader (clear packets to
 * [Engine.sendPacket]), the UDP reader (datagrams to
 * [Engine.receiveDatagram]) and the timer ([Engine.handleTimeout] whenever
 * [Engine.nextTimeoutMs] comes due). The engine's output arrives through
 * [EngineHost] on whichever of these threads caused it; writes to the TUN
 * fd and the socket are thread-safe.
 *
 * Key material never passes through here: it went into the [Engine] with
 * its [Profile] and stays inside the Rust library.
 */
class ChantryTunnel(
    profile: Profile,
    private val socket: DatagramChannel,
    private val onEvent: (EngineEvent) -> Unit,
) : AutoCloseable {
    private val running = AtomicBoolean(true)
    @Volatile private var tunIn: FileInputStream? = null
    @Volatile private var tunOut: FileOutputStream? = null
    private val timerLock = Object()
    private val threads = mutableListOf<Thread>()

    private val host = object : EngineHost {
        override fun sendDatagram(to: Endpoint, datagram: ByteArray) {
            try {
                socket.send(ByteBuffer.wrap(datagram), InetSocketAddress(to.ip, to.port.toInt()))
            } catch (e: IOException) {
                throw HostException.Failed("send to ${to.ip}:${to.port}: ${e.message}")
            }
        }

        override fun deliverPacket(packet: ByteArray) {
            val out = tunOut ?: throw HostException.Failed("TUN interface not ready")
            try {
                synchronized(out) { out.write(packet) }
            } catch (e: IOException) {
                throw HostException.Failed("TUN write: ${e.message}")
            }
        }

        override fun onEvent(event: EngineEvent) {
            // A key exchange may have moved the timer: wake it.
            synchronized(timerLock) { timerLock.notifyAll() }
            this@ChantryTunnel.onEvent(event)
        }
    }

    /**
     * The engine; throws [ProfileException] for a bad profile. Its
     * [Engine.settings] tell how to build the TUN interface.
     */
    val engine: Engine = Engine(profile, host)

    /** Starts the three threads on the established TUN interface. */
    fun start(tunIn: FileInputStream, tunOut: FileOutputStream) {
        this.tunIn = tunIn
        this.tunOut = tunOut
        threads += thread("chantry-tun") { tunLoop() }
        threads += thread("chantry-udp") { udpLoop() }
        threads += thread("chantry-timer") { timerLoop() }
    }

    private fun thread(name: String, body: () -> Unit) =
        Thread({
            try {
                body()
            } catch (e: Exception) {
                if (running.get()) Log.e(TAG, "$name stopped", e)
            }
        }, name).apply { isDaemon = true; start() }

    private fun tunLoop() {
        val input = tunIn ?: return
        val buf = ByteArray(MAX_PACKET)
        while (running.get()) {
            val n = input.read(buf)
            if (n < 0) break
            if (n > 0) engine.sendPacket(buf.copyOf(n))
        }
    }

    private fun udpLoop() {
        val buf = ByteBuffer.allocate(MAX_PACKET)
        while (running.get()) {
            buf.clear()
            val from = try {
                socket.receive(buf) as? InetSocketAddress ?: continue
            } catch (e: ClosedChannelException) {
                break
            }
            val ip = from.address as? Inet4Address ?: continue
            buf.flip()
            val datagram = ByteArray(buf.remaining()).also { buf.get(it) }
            engine.receiveDatagram(Endpoint(ip.hostAddress ?: continue, from.port.toUShort()), datagram)
        }
    }

    private fun timerLoop() {
        while (running.get()) {
            val wait = engine.nextTimeoutMs()?.toLong() ?: IDLE_MS
            if (wait <= 0) {
                engine.handleTimeout()
                continue
            }
            synchronized(timerLock) { timerLock.wait(minOf(wait, IDLE_MS)) }
        }
    }

    /** Stops the threads, wipes the engine's keys and frees it. */
    override fun close() {
        if (!running.getAndSet(false)) return
        engine.shutdown()
        synchronized(timerLock) { timerLock.notifyAll() }
        runCatching { socket.close() }
        runCatching { tunIn?.close() }
        runCatching { tunOut?.close() }
        threads.forEach { it.join(1000) }
        engine.close()
    }

    companion object {
        private const val TAG = "ChantryTunnel"
        /** Larger than any datagram or clear packet the engine handles. */
        private const val MAX_PACKET = 2048
        /** Longest sleep of the timer thread. */
        private const val IDLE_MS = 1000L
    }
}
