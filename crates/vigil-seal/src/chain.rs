//! The forward-secure HMAC chain.
//!
//! A chain starts at entry `s` under audit key version `v` with
//! `k_s = HMAC-SHA256(K_v, "vigil-seal chain v1\0" || origin || 0x00 || be64(s))`.
//! Entry `i` gets `mac_i = HMAC-SHA256(k_i, "vigil-seal entry v2\0" || d_i)`,
//! where `d_i` is the entry's digest (the line without its MAC, then the
//! previous MAC, hashed: `line::EntryHash`), and the key then evolves,
//! `k_{i+1} = SHA-256("vigil-seal evolve v1\0" || k_i)`; the old key is
//! overwritten at once. Whoever steals `k_i` cannot compute any earlier key.

use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

use zeroize::Zeroizing;

use crate::merkle::Hash;
use crate::sha::{Hmac, HmacKey, sha256_secret};

const CHAIN_LABEL: &[u8] = b"vigil-seal chain v1\0";
const EVOLVE_LABEL: &[u8] = b"vigil-seal evolve v1\0";
const ENTRY_LABEL: &[u8] = b"vigil-seal entry v2\0";

/// The current key of a chain. Zeroized when dropped or evolved.
pub(crate) struct ChainKey {
    k: Zeroizing<[u8; 32]>,
}

impl ChainKey {
    /// The key of the chain that starts at `seq` under `audit_key`.
    pub(crate) fn start(audit_key: &[u8; 32], origin: &str, seq: u64) -> ChainKey {
        let mut m = Hmac::new(audit_key);
        m.update(CHAIN_LABEL);
        m.update(origin.as_bytes());
        m.update(&[0]);
        m.update(&seq.to_be_bytes());
        let mut k = Zeroizing::new([0u8; 32]);
        *k = m.finish();
        ChainKey { k }
    }

    /// The MAC of the entry whose digest is `digest`:
    /// `HMAC(k, "vigil-seal entry v2\0" || digest)`.
    pub(crate) fn mac(&self, digest: &Hash) -> Hash {
        entry_mac(Hmac::new(&self.k), digest)
    }

    /// Moves to the next entry's key and erases the current one.
    pub(crate) fn evolve(&mut self) {
        *self.k = sha256_secret(EVOLVE_LABEL, &self.k);
    }
}

/// Finishes `m`, an HMAC under an entry's key, over the entry's digest
/// (see [`ChainKey::mac`]).
fn entry_mac(mut m: Hmac, digest: &Hash) -> Hash {
    // In one piece: 52 bytes, one block after the key's.
    let mut msg = [0u8; ENTRY_LABEL.len() + 32];
    let (label, rest) = msg.split_at_mut(ENTRY_LABEL.len());
    label.copy_from_slice(ENTRY_LABEL);
    rest.copy_from_slice(digest);
    m.update(&msg);
    m.finish()
}

/// Keys hashed ahead per batch (8 KiB): each batch may cost a wake-up of
/// the thread, a system call.
const KEYS_BATCH: usize = 128;

/// Batches waiting for the sealer, besides the one it uses and the one the
/// thread hashes: how long the thread may wait for a CPU before the sealer
/// waits for it.
const KEYS_AHEAD: usize = 2;

/// The sealer's chain: [`ChainKey`]'s MACs, with the key blocks of the next
/// entries' HMACs and the key evolution hashed ahead on a thread of their
/// own (3 of the 5 SHA-256 blocks of an entry's MAC).
///
/// The thread keeps the key of the first entry it has not hashed yet and
/// evolves it in place; the hashed key blocks wait in batches, and the
/// sealer erases each entry's as it uses them. So what memory holds is
/// always keys of entries not sealed yet, which the current key alone
/// yields too: no key of a sealed entry can be recovered, as with
/// [`ChainKey`] alone. On a single CPU, without SHA extensions or when the
/// thread cannot start, the chain is a [`ChainKey`] on the sealing thread.
pub(crate) struct KeyStream(Stream);

enum Stream {
    Inline(ChainKey),
    Ahead(Ahead),
}

struct Ahead {
    batch: Vec<HmacKey>,
    /// The next entry's key in `batch`.
    next: usize,
    /// `None` only while dropping.
    rx: Option<Receiver<Vec<HmacKey>>>,
    handle: Option<JoinHandle<()>>,
}

impl KeyStream {
    /// The chain that starts at `seq` under `audit_key`.
    pub(crate) fn start(audit_key: &[u8; 32], origin: &str, seq: u64) -> KeyStream {
        let key = ChainKey::start(audit_key, origin, seq);
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        if cpus < 2 || HmacKey::new(&key.k).is_none() {
            return KeyStream(Stream::Inline(key));
        }
        // The key moves into the thread, so it cannot come back if the
        // thread does not start: derive it again then.
        let (tx, rx) = mpsc::sync_channel(KEYS_AHEAD);
        let spawned = std::thread::Builder::new()
            .name("vigil-seal-keys".into())
            .spawn(move || hash_keys(key, &tx));
        match spawned {
            Ok(handle) => KeyStream(Stream::Ahead(Ahead {
                batch: Vec::new(),
                next: 0,
                rx: Some(rx),
                handle: Some(handle),
            })),
            Err(_) => KeyStream(Stream::Inline(ChainKey::start(audit_key, origin, seq))),
        }
    }

    /// The MAC of the current entry ([`ChainKey::mac`]); moves on to the
    /// next entry's key and erases this one's.
    pub(crate) fn mac_and_evolve(&mut self, digest: &Hash) -> Hash {
        match &mut self.0 {
            Stream::Inline(key) => {
                let mac = key.mac(digest);
                key.evolve();
                mac
            }
            Stream::Ahead(ahead) => entry_mac(ahead.next_hmac(), digest),
        }
    }
}

impl Ahead {
    /// An HMAC under the next entry's key, whose hashed key blocks are then
    /// erased.
    fn next_hmac(&mut self) -> Hmac {
        if self.next == self.batch.len() {
            let batch = self.rx.as_ref().and_then(|rx| rx.recv().ok());
            match batch {
                // Dropping the used batch erases it again; it was erased
                // key by key already.
                Some(batch) => self.batch = batch,
                None => self.died(),
            }
            self.next = 0;
        }
        let key = &mut self.batch[self.next];
        let m = Hmac::keyed(key);
        key.erase();
        self.next += 1;
        m
    }

    /// The thread is gone, which only a panic in it does: the sealer
    /// cannot go on without its keys, so the panic goes on here.
    fn died(&mut self) -> ! {
        self.rx = None;
        rethrow(self.handle.take(), "key")
    }
}

/// Joins a helper thread of the sealer that stopped and carries its panic
/// on in the calling thread; `what` names the thread when it stopped
/// without one.
pub(crate) fn rethrow(handle: Option<JoinHandle<()>>, what: &str) -> ! {
    match handle.map(JoinHandle::join) {
        Some(Err(panic)) => std::panic::resume_unwind(panic),
        _ => panic!("the {what} thread of the audit log stopped"),
    }
}

impl Drop for Ahead {
    fn drop(&mut self) {
        // Closing the channel ends the thread, which erases its key.
        self.rx = None;
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

/// The thread: hashes the key blocks of consecutive entries in batches,
/// evolving the key after each, until the sealer is gone.
fn hash_keys(mut key: ChainKey, tx: &SyncSender<Vec<HmacKey>>) {
    loop {
        let mut batch = Vec::with_capacity(KEYS_BATCH);
        for _ in 0..KEYS_BATCH {
            let Some(hashed) = HmacKey::new(&key.k) else {
                return;
            };
            batch.push(hashed);
            key.evolve();
        }
        // A batch nobody takes is erased as it is dropped.
        if tx.send(batch).is_err() {
            return;
        }
    }
}

/// Compares two MACs in constant time.
pub(crate) fn mac_eq(a: &Hash, b: &Hash) -> bool {
    use subtle::ConstantTimeEq;
    // The difference of four 64-bit words, folded without branches, then
    // one constant-time test: `subtle` on the bytes puts an optimisation
    // barrier on each of the 32.
    let (a, b) = (a.as_chunks::<8>().0, b.as_chunks::<8>().0);
    let diff = a.iter().zip(b).fold(0u64, |acc, (x, y)| {
        acc | (u64::from_ne_bytes(*x) ^ u64::from_ne_bytes(*y))
    });
    diff.ct_eq(&0).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evolving_changes_the_key_and_the_mac() {
        let mut k = ChainKey::start(&[1; 32], "db1", 1);
        let m1 = k.mac(&[5; 32]);
        k.evolve();
        let m2 = k.mac(&[5; 32]);
        assert_ne!(m1, m2);
    }

    #[test]
    fn every_input_is_bound() {
        let k = ChainKey::start(&[1; 32], "db1", 1);
        let base = k.mac(&[5; 32]);
        let mut digest = [5; 32];
        digest[31] ^= 1;
        assert_ne!(base, k.mac(&digest));
        assert_ne!(base, ChainKey::start(&[1; 32], "db2", 1).mac(&[5; 32]));
        assert_ne!(base, ChainKey::start(&[1; 32], "db1", 2).mac(&[5; 32]));
        assert_ne!(base, ChainKey::start(&[2; 32], "db1", 1).mac(&[5; 32]));
        assert!(mac_eq(&base, &k.mac(&[5; 32])));
    }

    #[test]
    fn the_stream_gives_the_chain_key_macs() {
        let mut key = ChainKey::start(&[4; 32], "db1", 7);
        let mut stream = KeyStream::start(&[4; 32], "db1", 7);
        for seq in 7..7 + 3 * KEYS_BATCH as u64 + 5 {
            let digest = crate::sha::sha256(&[format!("record {seq}").as_bytes()]);
            let want = key.mac(&digest);
            key.evolve();
            let got = stream.mac_and_evolve(&digest);
            assert_eq!(got, want, "seq {seq}");
        }
    }

    #[test]
    fn macs_differing_in_any_bit_are_unequal() {
        let a: Hash = std::array::from_fn(|i| (i * 37) as u8);
        assert!(mac_eq(&a, &a));
        for byte in 0..32 {
            for bit in 0..8 {
                let mut b = a;
                b[byte] ^= 1 << bit;
                assert!(!mac_eq(&a, &b), "byte {byte} bit {bit}");
            }
        }
    }
}
