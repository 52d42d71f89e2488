package org.chantry.mobile

import android.app.Notification
import android.app.NotificationChannel
import android.app.NotificationManager
import android.content.Intent
import android.content.pm.ServiceInfo
import android.net.VpnService
import android.os.Build
import android.os.ParcelFileDescriptor
import android.util.Log
import java.io.FileInputStream
import java.io.FileOutputStream
import java.net.InetSocketAddress
import java.nio.channels.DatagramChannel

/**
 * The Android host of the engine: establishes the TUN interface from the
 * profile's [TunnelSettings], opens the tunnel's UDP socket and protects it
 * (so its datagrams bypass the VPN), and hands both to a [ChantryTunnel].
 *
 * Start it with [connectIntent] after the user approved the VPN
 * (`VpnService.prepare`); stop it with [disconnectIntent]. State changes are
 * broadcast as [ACTION_STATE] with the state's name in [EXTRA_STATE].
 */
class ChantryVpnService : VpnService() {
    private var tunnel: ChantryTunnel? = null
    private var tun: ParcelFileDescriptor? = null

    override fun onStartCommand(intent: Intent?, flags: Int, startId: Int): Int {
        when (intent?.action) {
            ACTION_CONNECT -> {
                val profile = profileFrom(intent) ?: return START_NOT_STICKY
                startForegroundNotice()
                connect(profile)
            }
            ACTION_DISCONNECT -> {
                disconnect()
                stopSelf()
            }
        }
        return START_NOT_STICKY
    }

    override fun onRevoke() {
        disconnect()
        stopSelf()
    }

    override fun onDestroy() {
        disconnect()
        super.onDestroy()
    }

    private fun connect(profile: Profile) {
        disconnect()
        val socket = DatagramChannel.open()
        try {
            socket.bind(InetSocketAddress(0))
            // Outside the VPN: the tunnel's own datagrams must not loop back
            // into it.
            check(protect(socket.socket())) { "VpnService.protect refused the UDP socket" }
            val t = ChantryTunnel(profile, socket, ::onEngineEvent)
            tunnel = t
            val fd = establish(t.engine.settings())
            tun = fd
            t.start(FileInputStream(fd.fileDescriptor), FileOutputStream(fd.fileDescriptor))
        } catch (e: Exception) {
            Log.e(TAG, "could not connect", e)
            runCatching { socket.close() }
            broadcast(if (e is ProfileException) "PROFILE_ERROR: ${e.message}" else "FAILED: ${e.message}")
            disconnect()
        }
    }

    /** Builds the TUN interface: address, MTU, routes. */
    private fun establish(s: TunnelSettings): ParcelFileDescriptor {
        val b = Builder()
            .setSession(s.name)
            .addAddress(s.address, s.prefix.toInt())
            .setMtu(s.mtu.toInt())
            .setBlocking(true)
        for (r in s.routes) b.addRoute(r.address, r.prefix.toInt())
        return b.establish() ?: error("the VPN is not prepared (VpnService.prepare)")
    }

    private fun disconnect() {
        tunnel?.close()
        tunnel = null
        tun?.close()
        tun = null
    }

    private fun onEngineEvent(event: EngineEvent) {
        when (event) {
            is EngineEvent.State -> broadcast(event.state.name)
            is EngineEvent.Error -> Log.w(TAG, event.message)
            is EngineEvent.Info -> Log.i(TAG, event.message)
            else -> Log.i(TAG, event.toString())
        }
    }

    private fun broadcast(state: String) {
        sendBroadcast(Intent(ACTION_STATE).setPackage(packageName).putExtra(EXTRA_STATE, state))
    }

    private fun startForegroundNotice() {
        val nm = getSystemService(NotificationManager::class.java)
        nm.createNotificationChannel(
            NotificationChannel(CHANNEL, "Chantry tunnel", NotificationManager.IMPORTANCE_LOW)
        )
        val n = Notification.Builder(this, CHANNEL)
            .setContentTitle("Chantry")
            .setContentText("Tunnel active")
            .setSmallIcon(android.R.drawable.ic_lock_lock)
            .build()
        if (Build.VERSION.SDK_INT >= 34) {
            startForeground(1, n, ServiceInfo.FOREGROUND_SERVICE_TYPE_SYSTEM_EXEMPTED)
        } else {
            startForeground(1, n)
        }
    }

    companion object {
        private const val TAG = "ChantryVpnService"
        private const val CHANNEL = "chantry"

        const val ACTION_CONNECT = "org.chantry.mobile.CONNECT"
        const val ACTION_DISCONNECT = "org.chantry.mobile.DISCONNECT"
        const val ACTION_STATE = "org.chantry.mobile.STATE"
        const val EXTRA_STATE = "state"
        private const val EXTRA_CONF = "conf"
        private const val EXTRA_SECRET = "secret"
        private const val EXTRA_VICAR = "vicar"
        private const val EXTRA_PASSPHRASE = "passphrase"
        private const val EXTRA_TUNNEL = "tunnel"

        /** Connect with a sanctum.conf and its 32-byte shared secret. */
        fun connectIntent(ctx: android.content.Context, conf: String, secret: ByteArray): Intent =
            Intent(ctx, ChantryVpnService::class.java).setAction(ACTION_CONNECT)
                .putExtra(EXTRA_CONF, conf).putExtra(EXTRA_SECRET, secret)

        /** Connect with a vicar file, its passphrase and the `tunnel` value. */
        fun connectVicarIntent(
            ctx: android.content.Context, vicar: ByteArray, passphrase: String, tunnel: String,
        ): Intent =
            Intent(ctx, ChantryVpnService::class.java).setAction(ACTION_CONNECT)
                .putExtra(EXTRA_VICAR, vicar).putExtra(EXTRA_PASSPHRASE, passphrase)
                .putExtra(EXTRA_TUNNEL, tunnel)

        fun disconnectIntent(ctx: android.content.Context): Intent =
            Intent(ctx, ChantryVpnService::class.java).setAction(ACTION_DISCONNECT)

        private fun profileFrom(i: Intent): Profile? {
            i.getStringExtra(EXTRA_CONF)?.let { conf ->
                val secret = i.getByteArrayExtra(EXTRA_SECRET)
                i.removeExtra(EXTRA_SECRET)
                return Profile.Conf(conf, ProfileKeys(secret, null, null, null))
            }
            val vicar = i.getByteArrayExtra(EXTRA_VICAR) ?: return null
            val pass = i.getStringExtra(EXTRA_PASSPHRASE) ?: return null
            val tunnel = i.getStringExtra(EXTRA_TUNNEL) ?: return null
            i.removeExtra(EXTRA_PASSPHRASE)
            return Profile.Vicar(vicar, pass, tunnel)
        }
    }
}
