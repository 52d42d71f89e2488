package org.chantry.app

import android.app.Activity
import android.content.BroadcastReceiver
import android.content.Context
import android.content.Intent
import android.content.IntentFilter
import android.net.VpnService
import android.os.Bundle
import android.widget.Button
import android.widget.LinearLayout
import android.widget.TextView
import org.chantry.mobile.ChantryVpnService
import java.io.File

/**
 * Connect / Disconnect for the profile in the app's files directory:
 * `profile.conf` (sanctum.conf text) and `secret` (the 32-byte shared
 * secret), e.g. copied there with `adb push` + `run-as` (see README.md).
 */
class MainActivity : Activity() {
    private lateinit var status: TextView

    private val stateReceiver = object : BroadcastReceiver() {
        override fun onReceive(c: Context, i: Intent) {
            status.text = i.getStringExtra(ChantryVpnService.EXTRA_STATE) ?: "?"
        }
    }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        status = TextView(this).apply { text = "disconnected" }
        val connect = Button(this).apply { text = "Connect"; setOnClickListener { prepare() } }
        val disconnect = Button(this).apply {
            text = "Disconnect"
            setOnClickListener { startService(ChantryVpnService.disconnectIntent(this@MainActivity)) }
        }
        setContentView(LinearLayout(this).apply {
            orientation = LinearLayout.VERTICAL
            addView(status); addView(connect); addView(disconnect)
        })
        registerReceiver(stateReceiver, IntentFilter(ChantryVpnService.ACTION_STATE), RECEIVER_NOT_EXPORTED)
    }

    override fun onDestroy() {
        unregisterReceiver(stateReceiver)
        super.onDestroy()
    }

    /** Asks the user to approve the VPN once, then connects. */
    private fun prepare() {
        val ask = VpnService.prepare(this)
        if (ask != null) startActivityForResult(ask, REQUEST_VPN) else connect()
    }

    @Deprecated("Activity result API kept minimal")
    override fun onActivityResult(requestCode: Int, resultCode: Int, data: Intent?) {
        if (requestCode == REQUEST_VPN && resultCode == RESULT_OK) connect()
    }

    private fun connect() {
        val conf = File(filesDir, "profile.conf")
        val secret = File(filesDir, "secret")
        if (!conf.exists() || !secret.exists()) {
            status.text = "put profile.conf and secret into ${filesDir.path}"
            return
        }
        startForegroundService(
            ChantryVpnService.connectIntent(this, conf.readText(), secret.readBytes())
        )
    }

    companion object {
        private const val REQUEST_VPN = 1
    }
}
