//! What the keying roles (chapel, pilgrim, shrine) share: reading the
//! shared secret from the guardian's pipe, and handing key commands to the
//! data-path roles.

use std::io::Read;
use std::os::fd::OwnedFd;

use anyhow::{Context, Result, bail};
use chantry_core::exchange::KeyCommand;
use chantry_core::secret::Key32;
use zeroize::Zeroizing;

use crate::shm::{KeyMsg, Producer};

/// Reads the 32-byte shared secret from the pipe the guardian filled, then
/// closes it.
pub fn read_secret(fd: OwnedFd) -> Result<Key32> {
    let mut pipe = std::fs::File::from(fd);
    let mut buf = Zeroizing::new([0u8; 33]);
    let mut got = 0;
    while got < buf.len() {
        let n = pipe
            .read(&mut buf[got..])
            .context("reading the secret pipe")?;
        if n == 0 {
            break;
        }
        got += n;
    }
    if got != 32 {
        bail!("the secret pipe held {got} bytes, not 32");
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(&buf[..32]);
    Ok(Key32::new(key))
}

/// Where key commands go: bless gets TX keys, confess RX keys, both get
/// erase orders. `bless` is absent in a shrine, `confess` in a pilgrim.
pub struct KeyOut {
    /// The ring to bless.
    pub bless: Option<Producer>,
    /// The ring to confess.
    pub confess: Option<Producer>,
}

impl KeyOut {
    /// Forwards one command.
    pub fn apply(&mut self, cmd: KeyCommand) {
        match cmd {
            KeyCommand::InstallTx(k) => send(
                &mut self.bless,
                &KeyMsg::InstallTx {
                    spi: k.spi,
                    salt: k.salt,
                    key: k.key,
                },
            ),
            KeyCommand::InstallRx(k) => send(
                &mut self.confess,
                &KeyMsg::InstallRx {
                    spi: k.spi,
                    salt: k.salt,
                    key: k.key,
                },
            ),
            KeyCommand::Erase => {
                send(&mut self.bless, &KeyMsg::Erase);
                send(&mut self.confess, &KeyMsg::Erase);
            }
        }
    }
}

/// Pushes a key message and wakes its consumer. Key rings are drained at
/// once by their consumers; a full one means the consumer is gone, and the
/// guardian restarts the whole set.
pub fn send(ring: &mut Option<Producer>, msg: &KeyMsg) {
    if let Some(p) = ring.as_mut() {
        if let Err(e) = p.push_key(msg) {
            tracing::warn!(error = %e, msg = msg.name(), "key ring refused a message");
        }
        p.wake();
    }
}
