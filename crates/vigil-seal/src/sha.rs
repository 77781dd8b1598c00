//! SHA-256 and HMAC-SHA256 for the seal's hashes.
//!
//! Every entry costs about 19 SHA-256 blocks, half of them in short
//! messages (the HMAC's key blocks, the key evolution, interior nodes), so
//! the per-message overhead of a general digest API shows. On CPUs with SHA
//! extensions this module frames the messages itself around the `sha2`
//! crate's block function, which then runs the hardware instructions; on
//! other CPUs it uses ring's digest, whose vectorised code is about twice as
//! fast as the portable block function there.

use ring::digest;
use zeroize::Zeroize;

use crate::merkle::Hash;

const IV: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// True when the CPU has SHA-256 instructions (checked once, cached by the
/// standard library).
fn hardware() -> bool {
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    {
        std::arch::is_x86_feature_detected!("sha") && std::arch::is_x86_feature_detected!("sse4.1")
    }
    #[cfg(target_arch = "aarch64")]
    {
        std::arch::is_aarch64_feature_detected!("sha2")
    }
    #[cfg(not(any(target_arch = "x86", target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

/// A SHA-256 computation in progress.
#[derive(Clone)]
pub(crate) struct Sha256(Imp);

#[derive(Clone)]
enum Imp {
    Blocks(Blocks),
    /// Boxed: ring's context is twice the size of `Blocks`, and the hashes
    /// of the fast path should not be moved around at that size.
    Ring(Box<digest::Context>),
}

/// SHA-256 over the `sha2` block function: the state, a partial block and
/// the message length.
#[derive(Clone)]
struct Blocks {
    state: [u32; 8],
    buf: [u8; 64],
    /// Bytes in `buf`.
    n: usize,
    /// Message bytes so far.
    len: u64,
}

impl Blocks {
    fn new() -> Blocks {
        Blocks {
            state: IV,
            buf: [0; 64],
            n: 0,
            len: 0,
        }
    }

    #[inline]
    fn update(&mut self, mut data: &[u8]) {
        self.len += data.len() as u64;
        if self.n > 0 {
            let take = (64 - self.n).min(data.len());
            self.buf[self.n..self.n + take].copy_from_slice(&data[..take]);
            self.n += take;
            data = &data[take..];
            if self.n < 64 {
                return;
            }
            sha2::block_api::compress256(&mut self.state, std::slice::from_ref(&self.buf));
            self.n = 0;
        }
        let (blocks, rest) = data.as_chunks::<64>();
        if !blocks.is_empty() {
            sha2::block_api::compress256(&mut self.state, blocks);
        }
        self.buf[..rest.len()].copy_from_slice(rest);
        self.n = rest.len();
    }

    /// Pads and hashes the last block(s), in place.
    fn finish(&mut self) -> Hash {
        let bits = self.len.wrapping_mul(8);
        let n = self.n;
        self.buf[n] = 0x80;
        self.buf[n + 1..].fill(0);
        if n + 1 > 56 {
            sha2::block_api::compress256(&mut self.state, std::slice::from_ref(&self.buf));
            self.buf = [0; 64];
        }
        self.buf[56..].copy_from_slice(&bits.to_be_bytes());
        sha2::block_api::compress256(&mut self.state, std::slice::from_ref(&self.buf));
        digest_of(&self.state)
    }
}

/// The digest of a final state.
#[inline]
fn digest_of(state: &[u32; 8]) -> Hash {
    let mut out = [0u8; 32];
    for (o, w) in out.chunks_exact_mut(4).zip(state) {
        o.copy_from_slice(&w.to_be_bytes());
    }
    out
}

impl Sha256 {
    /// A new computation, on the fastest implementation of this CPU.
    pub(crate) fn new() -> Sha256 {
        Sha256::with(hardware())
    }

    /// A new computation: over the block function when `blocks`, over
    /// ring's digest otherwise.
    fn with(blocks: bool) -> Sha256 {
        Sha256(if blocks {
            Imp::Blocks(Blocks::new())
        } else {
            Imp::Ring(Box::new(digest::Context::new(&digest::SHA256)))
        })
    }

    #[inline]
    pub(crate) fn update(&mut self, data: &[u8]) {
        match &mut self.0 {
            Imp::Blocks(b) => b.update(data),
            Imp::Ring(c) => c.update(data),
        }
    }

    pub(crate) fn finish(self) -> Hash {
        match self.0 {
            Imp::Blocks(mut b) => b.finish(),
            Imp::Ring(c) => {
                let mut out = [0u8; 32];
                out.copy_from_slice((*c).finish().as_ref());
                out
            }
        }
    }
}

/// SHA-256 of the concatenation of `parts`.
pub(crate) fn sha256(parts: &[&[u8]]) -> Hash {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finish()
}

/// SHA-256 of `label || secret`, at most 55 bytes: the block it is hashed
/// in is erased afterwards.
pub(crate) fn sha256_secret(label: &[u8], secret: &[u8; 32]) -> Hash {
    let len = label.len() + secret.len();
    if len > 55 || !hardware() {
        return sha256(&[label, secret]);
    }
    let mut block = [0u8; 64];
    block[..label.len()].copy_from_slice(label);
    block[label.len()..len].copy_from_slice(secret);
    block[len] = 0x80;
    block[56..].copy_from_slice(&(len as u64 * 8).to_be_bytes());
    let mut state = IV;
    sha2::block_api::compress256(&mut state, std::slice::from_ref(&block));
    block.as_mut_slice().zeroize();
    digest_of(&state)
}

/// An HMAC-SHA256 key's two blocks, hashed: the states its inner and outer
/// hashes start from, as secret as the key. Erased when dropped.
pub(crate) struct HmacKey {
    inner: [u32; 8],
    outer: [u32; 8],
}

impl HmacKey {
    /// The hashed key blocks of `key`, when this CPU has SHA extensions
    /// (ring's digest, used otherwise, does not expose its state).
    pub(crate) fn new(key: &[u8; 32]) -> Option<HmacKey> {
        hardware().then(|| HmacKey::hash(key))
    }

    fn hash(key: &[u8; 32]) -> HmacKey {
        let mut pad = [0x36u8; 64];
        for (p, k) in pad.iter_mut().zip(key) {
            *p ^= k;
        }
        let mut inner = IV;
        sha2::block_api::compress256(&mut inner, std::slice::from_ref(&pad));
        // 0x36 ^ 0x5c turns the inner pad into the outer one.
        for p in &mut pad {
            *p ^= 0x36 ^ 0x5c;
        }
        let mut outer = IV;
        sha2::block_api::compress256(&mut outer, std::slice::from_ref(&pad));
        // As a slice: one fill and a barrier, not a volatile write per byte.
        pad.as_mut_slice().zeroize();
        HmacKey { inner, outer }
    }

    /// Erases the states.
    pub(crate) fn erase(&mut self) {
        self.inner.as_mut_slice().zeroize();
        self.outer.as_mut_slice().zeroize();
    }
}

impl Drop for HmacKey {
    fn drop(&mut self) {
        self.erase();
    }
}

/// An HMAC-SHA256 computation in progress, under a 32-byte key.
pub(crate) struct Hmac(HmacImp);

enum HmacImp {
    /// The inner hash, and the outer one's state after its key block: the
    /// outer hash is one more block.
    Blocks {
        inner: Blocks,
        outer: [u32; 8],
    },
    Ring {
        inner: Sha256,
        outer: Sha256,
    },
}

impl Hmac {
    /// Starts an HMAC under `key`.
    pub(crate) fn new(key: &[u8; 32]) -> Hmac {
        Hmac::with(key, hardware())
    }

    fn with(key: &[u8; 32], blocks: bool) -> Hmac {
        if blocks {
            return Hmac::keyed(&HmacKey::hash(key));
        }
        let mut pad = [0x36u8; 64];
        for (p, k) in pad.iter_mut().zip(key) {
            *p ^= k;
        }
        let mut inner = Sha256::with(false);
        inner.update(&pad);
        // 0x36 ^ 0x5c turns the inner pad into the outer one.
        for p in &mut pad {
            *p ^= 0x36 ^ 0x5c;
        }
        let mut outer = Sha256::with(false);
        outer.update(&pad);
        pad.as_mut_slice().zeroize();
        Hmac(HmacImp::Ring { inner, outer })
    }

    /// Starts an HMAC whose key blocks were hashed already.
    pub(crate) fn keyed(key: &HmacKey) -> Hmac {
        let inner = Blocks {
            state: key.inner,
            buf: [0; 64],
            n: 0,
            len: 64,
        };
        Hmac(HmacImp::Blocks {
            inner,
            outer: key.outer,
        })
    }

    #[inline]
    pub(crate) fn update(&mut self, data: &[u8]) {
        match &mut self.0 {
            HmacImp::Blocks { inner, .. } => inner.update(data),
            HmacImp::Ring { inner, .. } => inner.update(data),
        }
    }

    pub(crate) fn finish(self) -> Hash {
        match self.0 {
            HmacImp::Blocks {
                mut inner,
                mut outer,
            } => {
                // The outer message is the key block and the inner hash:
                // 96 bytes, padded in one block.
                let mut block = [0u8; 64];
                block[..32].copy_from_slice(&inner.finish());
                block[32] = 0x80;
                block[56..].copy_from_slice(&(96u64 * 8).to_be_bytes());
                sha2::block_api::compress256(&mut outer, std::slice::from_ref(&block));
                digest_of(&outer)
            }
            HmacImp::Ring { inner, mut outer } => {
                outer.update(&inner.finish());
                outer.finish()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::hmac;

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + n) as u8).collect()
    }

    #[test]
    fn both_implementations_agree_with_ring() {
        for n in 0..300 {
            let d = data(n);
            let want = digest::digest(&digest::SHA256, &d);
            for blocks in [true, false] {
                // In two uneven pieces, to exercise the partial block.
                let mut h = Sha256::with(blocks);
                let cut = n / 3;
                h.update(&d[..cut]);
                h.update(&d[cut..]);
                assert_eq!(&h.finish()[..], want.as_ref(), "{n} {blocks}");
            }
            let key: [u8; 32] = std::array::from_fn(|i| (i + n) as u8);
            let want = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key), &d);
            for blocks in [true, false] {
                let mut m = Hmac::with(&key, blocks);
                m.update(&d[..n / 2]);
                m.update(&d[n / 2..]);
                assert_eq!(&m.finish()[..], want.as_ref(), "hmac {n} {blocks}");
            }
        }
    }

    #[test]
    fn hashed_key_blocks_give_the_same_hmac() {
        let key: [u8; 32] = std::array::from_fn(|i| (3 * i) as u8);
        let d = data(300);
        let want = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key), &d);
        let mut m = Hmac::keyed(&HmacKey::hash(&key));
        m.update(&d);
        assert_eq!(&m.finish()[..], want.as_ref());
    }

    #[test]
    fn secret_hashing_agrees() {
        let secret: [u8; 32] = std::array::from_fn(|i| i as u8);
        for n in 0..40 {
            let d = data(n);
            assert_eq!(sha256_secret(&d, &secret), sha256(&[&d, &secret]), "{n}");
        }
    }

    #[test]
    fn known_answer() {
        // FIPS 180-2, "abc".
        assert_eq!(
            crate::merkle::hash_to_hex(&sha256(&[b"abc"])),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
