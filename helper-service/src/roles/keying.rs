//! What the keying roles (chapel, pilgrim, shrine) share: reading the
//! shared secret from the guardian's pipe, and handing key commands to the
//! data-path roles.

use std::io::Read;
use std::os::fd::OwnedFd;

use anyhow::{Context, Result, bail};
use chantry_core::cathedral::COSK_LEN;
use chantry_core::exchange::KeyCommand;
use chantry_core::secret::{Key32, Secret};
use zeroize::Zeroizing;

use crate::shm::{KeyMsg, Producer};

/// Reads the 32-byte shared secret from the pipe the guardian filled, then
/// closes it.
pub fn read_secret(fd: OwnedFd) -> Result<Key32> {
    read_pipe::<32>(fd)
}

/// The keys of a cathedral client's chapel.
pub struct ClientKeys {
    /// The shared secret; `None` until the first ambry when a `kek` is
    /// configured and the secret file did not exist yet.
    pub secret: Option<Key32>,
    /// The cathedral secret.
    pub cs: Key32,
    /// The COSK.
    pub cosk: Secret<COSK_LEN>,
    /// The base KEK, if configured.
    pub kek: Option<Key32>,
}

/// Reads a cathedral client's keys: secret (32), its presence byte,
/// cathedral secret (32), COSK (64), KEK (32), its presence byte.
pub fn read_client_keys(fd: OwnedFd) -> Result<ClientKeys> {
    const LEN: usize = 32 + 1 + 32 + COSK_LEN + 32 + 1;
    let all = read_pipe::<LEN>(fd)?;
    let b = all.expose();
    let key = |at: usize| {
        let mut k = Zeroizing::new([0u8; 32]);
        k.copy_from_slice(&b[at..at + 32]);
        Key32::new(*k)
    };
    let mut cosk = Zeroizing::new([0u8; COSK_LEN]);
    cosk.copy_from_slice(&b[65..65 + COSK_LEN]);
    let kek_at = 65 + COSK_LEN;
    Ok(ClientKeys {
        secret: (b[32] == 1).then(|| key(0)),
        cs: key(33),
        cosk: Secret::new(*cosk),
        kek: (b[kek_at + 32] == 1).then(|| key(kek_at)),
    })
}

/// Reads exactly `N` bytes from the pipe, then closes it.
fn read_pipe<const N: usize>(fd: OwnedFd) -> Result<Secret<N>> {
    let mut pipe = std::fs::File::from(fd);
    let mut buf = Zeroizing::new(vec![0u8; N + 1]);
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
    if got != N {
        bail!("the secret pipe held {got} bytes, not {N}");
    }
    let mut key = Zeroizing::new([0u8; N]);
    key.copy_from_slice(&buf[..N]);
    Ok(Secret::new(*key))
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
