//! The forward-secure HMAC chain.
//!
//! A chain starts at entry `s` under audit key version `v` with
//! `k_s = HMAC-SHA256(K_v, "vigil-seal chain v1\0" || origin || 0x00 || be64(s))`.
//! Entry `i` gets `mac_i = HMAC-SHA256(k_i, entry_i || mac_{i-1})` (see
//! [`ChainKey::mac`] for the exact bytes) and the key then evolves,
//! `k_{i+1} = SHA-256("vigil-seal evolve v1\0" || k_i)`; the old key is
//! overwritten at once. Whoever steals `k_i` cannot compute any earlier key.

use zeroize::Zeroizing;

use crate::merkle::Hash;
use crate::sha::{Hmac, sha256_secret};

const CHAIN_LABEL: &[u8] = b"vigil-seal chain v1\0";
const EVOLVE_LABEL: &[u8] = b"vigil-seal evolve v1\0";
const ENTRY_LABEL: &[u8] = b"vigil-seal entry v1\0";

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

    /// The MAC of one entry:
    /// `HMAC(k, "vigil-seal entry v1\0" || be64(seq) || be32(key_version) ||
    /// u8(start) || be64(len(record)) || record || be64(len(checkpoint)) ||
    /// checkpoint || prev_mac)`, where `checkpoint` is the note's bytes or
    /// empty.
    pub(crate) fn mac(
        &self,
        seq: u64,
        key_version: u32,
        start: bool,
        record: &[u8],
        checkpoint: Option<&str>,
        prev: &Hash,
    ) -> Hash {
        self.mac_split(seq, key_version, start, (record, &[]), checkpoint, prev)
    }

    /// [`mac`](Self::mac) of the record `record.0 || record.1`: a JSON
    /// record is the sealed line up to its seal and a closing brace, which
    /// the verifier need not copy.
    pub(crate) fn mac_split(
        &self,
        seq: u64,
        key_version: u32,
        start: bool,
        record: (&[u8], &[u8]),
        checkpoint: Option<&str>,
        prev: &Hash,
    ) -> Hash {
        let (head, tail) = record;
        let len = (head.len() + tail.len()) as u64;
        // The fixed-size fields in one piece: fewer partial-block copies.
        let mut fixed = [0u8; ENTRY_LABEL.len() + 8 + 4 + 1 + 8];
        let (label, rest) = fixed.split_at_mut(ENTRY_LABEL.len());
        label.copy_from_slice(ENTRY_LABEL);
        rest[..8].copy_from_slice(&seq.to_be_bytes());
        rest[8..12].copy_from_slice(&key_version.to_be_bytes());
        rest[12] = u8::from(start);
        rest[13..].copy_from_slice(&len.to_be_bytes());
        let mut m = Hmac::new(&self.k);
        m.update(&fixed);
        m.update(head);
        m.update(tail);
        let cp = checkpoint.map(str::as_bytes).unwrap_or_default();
        m.update(&(cp.len() as u64).to_be_bytes());
        m.update(cp);
        m.update(prev);
        m.finish()
    }

    /// Moves to the next entry's key and erases the current one.
    pub(crate) fn evolve(&mut self) {
        *self.k = sha256_secret(EVOLVE_LABEL, &self.k);
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
        let m1 = k.mac(1, 1, true, b"rec", None, &[0; 32]);
        k.evolve();
        let m2 = k.mac(1, 1, true, b"rec", None, &[0; 32]);
        assert_ne!(m1, m2);
    }

    #[test]
    fn every_input_is_bound() {
        let k = ChainKey::start(&[1; 32], "db1", 1);
        let base = k.mac(5, 1, false, b"rec", Some("cp"), &[0; 32]);
        assert_ne!(base, k.mac(6, 1, false, b"rec", Some("cp"), &[0; 32]));
        assert_ne!(base, k.mac(5, 2, false, b"rec", Some("cp"), &[0; 32]));
        assert_ne!(base, k.mac(5, 1, true, b"rec", Some("cp"), &[0; 32]));
        assert_ne!(base, k.mac(5, 1, false, b"reC", Some("cp"), &[0; 32]));
        assert_ne!(base, k.mac(5, 1, false, b"rec", None, &[0; 32]));
        assert_ne!(base, k.mac(5, 1, false, b"rec", Some("cp"), &[1; 32]));
        assert_ne!(
            base,
            ChainKey::start(&[1; 32], "db2", 1).mac(5, 1, false, b"rec", Some("cp"), &[0; 32])
        );
        assert_ne!(
            base,
            ChainKey::start(&[1; 32], "db1", 2).mac(5, 1, false, b"rec", Some("cp"), &[0; 32])
        );
        assert!(mac_eq(
            &base,
            &k.mac(5, 1, false, b"rec", Some("cp"), &[0; 32])
        ));
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
