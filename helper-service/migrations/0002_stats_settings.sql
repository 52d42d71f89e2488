-- Statistics samples: a running tunnel's counters (summed over its keys
-- since it was connected) every 10 s, kept 24 h per profile.
CREATE TABLE stats_samples (
    profile    TEXT NOT NULL,
    at         INTEGER NOT NULL,
    tx_packets INTEGER NOT NULL,
    tx_bytes   INTEGER NOT NULL,
    rx_packets INTEGER NOT NULL,
    rx_bytes   INTEGER NOT NULL,
    PRIMARY KEY (profile, at)
);

-- The service-wide settings: one row; absent = the defaults.
CREATE TABLE settings (
    id                          INTEGER PRIMARY KEY CHECK (id = 1),
    reconnect_on_network_change INTEGER NOT NULL,
    log_level                   TEXT NOT NULL
);

-- The event log is read newest first, per profile or all.
CREATE INDEX events_profile ON events (profile, id);
