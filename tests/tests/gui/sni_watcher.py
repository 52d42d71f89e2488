#!/usr/bin/python3
"""A minimal org.kde.StatusNotifierWatcher for the desktop app's test.

It owns the watcher's name on the session bus (what KDE's panel or GNOME's
AppIndicator extension do), prints each StatusNotifierItem that registers,
and on SIGUSR1 prints the Status and IconName of the registered items.
Debian's python3 with python3-gi; runs until killed.
"""

import os
import signal

from gi.repository import Gio, GLib

XML = """<node><interface name="org.kde.StatusNotifierWatcher">
<method name="RegisterStatusNotifierItem"><arg name="service" type="s" direction="in"/></method>
<method name="RegisterStatusNotifierHost"><arg name="service" type="s" direction="in"/></method>
<property name="RegisteredStatusNotifierItems" type="as" access="read"/>
<property name="IsStatusNotifierHostRegistered" type="b" access="read"/>
<property name="ProtocolVersion" type="i" access="read"/>
<signal name="StatusNotifierItemRegistered"><arg type="s"/></signal>
<signal name="StatusNotifierItemUnregistered"><arg type="s"/></signal>
<signal name="StatusNotifierHostRegistered"/>
</interface></node>"""

NODE = Gio.DBusNodeInfo.new_for_xml(XML)
ITEMS = []  # (bus name, object path)
CONN = []


def item(sender, service):
    """An item is named by an object path (on the sender) or a bus name."""
    if service.startswith("/"):
        return sender, service
    return service, "/StatusNotifierItem"


def on_call(conn, sender, path, iface, method, params, invocation):
    if method == "RegisterStatusNotifierItem":
        service = params.unpack()[0]
        bus, obj = item(sender, service)
        if (bus, obj) not in ITEMS:
            ITEMS.append((bus, obj))
        print(f"registered {bus} {obj}", flush=True)
        conn.emit_signal(None, path, iface, "StatusNotifierItemRegistered",
                         GLib.Variant("(s)", (bus + obj,)))
    invocation.return_value(None)


def on_get(conn, sender, path, iface, prop):
    if prop == "RegisteredStatusNotifierItems":
        return GLib.Variant("as", [b + o for b, o in ITEMS])
    if prop == "IsStatusNotifierHostRegistered":
        return GLib.Variant("b", True)
    return GLib.Variant("i", 0)


def on_bus(conn, name):
    CONN.append(conn)
    conn.register_object("/StatusNotifierWatcher", NODE.interfaces[0], on_call, on_get, None)


def on_name(conn, name):
    print(f"watcher ready pid={os.getpid()}", flush=True)


def dump():
    for bus, obj in ITEMS:
        for prop in ("Status", "IconName"):
            try:
                v = CONN[0].call_sync(
                    bus, obj, "org.freedesktop.DBus.Properties", "Get",
                    GLib.Variant("(ss)", ("org.kde.StatusNotifierItem", prop)),
                    None, Gio.DBusCallFlags.NONE, 2000, None)
                print(f"{prop}={v.unpack()[0]}", flush=True)
            except GLib.Error as e:
                print(f"{prop}? {e.message}", flush=True)
    return True


Gio.bus_own_name(Gio.BusType.SESSION, "org.kde.StatusNotifierWatcher",
                 Gio.BusNameOwnerFlags.NONE, on_bus, on_name, None)
GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGUSR1, dump)
GLib.MainLoop().run()
