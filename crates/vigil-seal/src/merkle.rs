//! RFC 6962 / RFC 9162 Merkle tree: hashing, an append-only compact tree,
//! proof generation and proof verification.
//!
//! Hashing (RFC 9162 §2.1.1):
//!
//! ```text
//! MTH({})      = SHA-256()
//! MTH({d(0)})  = SHA-256(0x00 || d(0))                       leaf_hash
//! MTH(D[n])    = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))  node_hash
//!                where k is the largest power of two smaller than n
//! ```
//!
//! The distinct prefixes separate leaves from interior nodes, so a leaf can
//! never be passed off as a subtree (second-preimage attacks).

use subtle::ConstantTimeEq;

use crate::sha::{Sha256, sha256};

/// A SHA-256 digest: a leaf hash, an interior node hash or a tree root.
pub type Hash = [u8; 32];

// SHA-256 here is `crate::sha`'s: these hashes are most of the cost of
// sealing and verifying.

/// Returns the RFC 6962 leaf hash of `data`: `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut ctx = Sha256::new();
    ctx.update(&[0x00]);
    ctx.update(data);
    ctx.finish()
}

/// Returns the RFC 6962 interior node hash: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut buf = [0u8; 65];
    buf[0] = 0x01;
    buf[1..33].copy_from_slice(left);
    buf[33..].copy_from_slice(right);
    sha256(&[&buf])
}

/// Returns the root of the empty tree: `SHA-256("")`.
pub fn empty_root() -> Hash {
    sha256(&[])
}

/// A hash as 64 lower-case hex digits, the form every vigil output uses.
pub fn hash_to_hex(hash: &Hash) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    hash.iter()
        .flat_map(|b| [HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]])
        .map(char::from)
        .collect()
}

/// Parses 64 hex digits (either case) into a hash.
pub fn hash_from_hex(s: &str) -> Option<Hash> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(b.chunks_exact(2)) {
        let hi = char::from(pair[0]).to_digit(16)?;
        let lo = char::from(pair[1]).to_digit(16)?;
        *o = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(out)
}

/// Why a proof could not be built or did not verify.
///
/// Every variant means "do not trust this claim"; the variants only say which
/// check caught it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// A consistency proof was asked for or checked from a tree of size 0.
    /// Every tree extends the empty tree, so such a proof proves nothing and
    /// RFC 9162 defines none (it requires `0 < size1`).
    #[error(
        "a consistency proof from the empty tree (size1 = 0) proves nothing and is not accepted"
    )]
    EmptyOldTree,
    /// The leaf index is not inside the tree: `index >= size`.
    #[error("leaf index {index} is beyond the tree size {size}")]
    IndexBeyondSize {
        /// The claimed leaf index.
        index: u64,
        /// The claimed tree size.
        size: u64,
    },
    /// A consistency proof did not lead back to the older root: either the
    /// proof is wrong or the older tree is not a prefix of the newer one.
    #[error("the consistency proof does not reproduce the old root (size1)")]
    OldRootMismatch,
    /// The older tree is claimed to be larger than the newer one.
    #[error("old tree size {size1} is larger than new tree size {size2}")]
    OldSizeBeyondNewSize {
        /// The claimed size of the older tree.
        size1: u64,
        /// The claimed size of the newer tree.
        size2: u64,
    },
    /// The proof does not lead to the expected root. For an inclusion proof
    /// the leaf is not at that index of that tree; for a consistency proof the
    /// newer root does not extend the older one (for equal sizes: the two
    /// roots differ, which is evidence of a fork).
    #[error("the proof does not reproduce the expected root")]
    RootMismatch,
    /// The leaf is among the first ones, of which only the frontier is
    /// known.
    #[error("leaf index {index} is before the first known leaf {first}")]
    IndexRemoved {
        /// The claimed leaf index.
        index: u64,
        /// The first leaf whose hash is known.
        first: u64,
    },
    /// The proof has the wrong number of hashes for the claimed index and
    /// sizes.
    #[error("wrong proof size: got {got} hashes, the claimed sizes need {want}")]
    WrongProofSize {
        /// Number of hashes in the proof.
        got: usize,
        /// Number of hashes the claimed index and sizes require.
        want: usize,
    },
}

/// Why [`Tree::from_frontier`] refused a persisted state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrontierError {
    /// The tree already holds `u64::MAX` leaves and cannot grow.
    #[error("a tree of {size} leaves is full and cannot be restored for appending")]
    Full {
        /// The claimed size.
        size: u64,
    },
    /// A frontier holds one hash per set bit of the size; this one does not.
    #[error(
        "a frontier for size {size} needs {want} hashes (one per set bit of the size), got {got}"
    )]
    WrongLength {
        /// The claimed size.
        size: u64,
        /// Number of hashes supplied.
        got: usize,
        /// Number of hashes the size requires.
        want: usize,
    },
}

/// An append-only Merkle tree that keeps only its frontier.
///
/// The frontier (a "compact range" over `[0, size)`) is the list of roots of
/// the perfect subtrees that make up the tree, largest (leftmost) first: one
/// hash per set bit of `size`. That is at most 64 hashes, enough to append
/// and to compute the root, but not to build proofs (those need the leaves,
/// see [`inclusion_proof`] and [`consistency_proof`]).
///
/// ```
/// use vigil_seal::{Tree, leaf_hash};
///
/// let mut tree = Tree::new();
/// tree.push(leaf_hash(b"first event"));
/// tree.push(leaf_hash(b"second event"));
/// let saved = tree.frontier().to_vec();
///
/// let restored = Tree::from_frontier(tree.size(), saved)?;
/// assert_eq!(restored.root(), tree.root());
/// # Ok::<(), vigil_seal::FrontierError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tree {
    size: u64,
    /// Invariant: `frontier.len() == size.count_ones()`, and `frontier[i]` is
    /// the root of the perfect subtree for the i-th highest set bit of `size`.
    frontier: Vec<Hash>,
}

impl Tree {
    /// Returns an empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Restores a tree from a size and the frontier saved by
    /// [`Tree::frontier`].
    pub fn from_frontier(size: u64, frontier: Vec<Hash>) -> Result<Self, FrontierError> {
        let want = size.count_ones() as usize;
        if frontier.len() != want {
            return Err(FrontierError::WrongLength {
                size,
                got: frontier.len(),
                want,
            });
        }
        if size == u64::MAX {
            return Err(FrontierError::Full { size });
        }
        Ok(Self { size, frontier })
    }

    /// Appends a leaf hash (see [`leaf_hash`]) and returns its index.
    ///
    /// # Panics
    ///
    /// If the tree is full (`u64::MAX` leaves). [`Tree::from_frontier`]
    /// refuses full trees, so only about 2^64 calls to `push` get there.
    pub fn push(&mut self, leaf: Hash) -> u64 {
        let index = self.size;
        let next = self.size.checked_add(1).expect("Merkle tree is full");
        let mut hash = leaf;
        // Each trailing one bit of the old size is a perfect subtree of the
        // same height as `hash`: merge them, right to left.
        let mut bits = self.size;
        while bits & 1 == 1 {
            match self.frontier.pop() {
                Some(left) => hash = node_hash(&left, &hash),
                // Unreachable by the invariant: one hash per set bit.
                None => break,
            }
            bits >>= 1;
        }
        self.frontier.push(hash);
        self.size = next;
        index
    }

    /// Hashes `data` as a leaf, appends it and returns its leaf hash.
    pub fn push_data(&mut self, data: &[u8]) -> Hash {
        let leaf = leaf_hash(data);
        self.push(leaf);
        leaf
    }

    /// Returns the number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Returns the root hash of the tree at its current size (the empty root
    /// for an empty tree).
    pub fn root(&self) -> Hash {
        let mut hashes = self.frontier.iter().rev();
        match hashes.next() {
            None => empty_root(),
            Some(last) => hashes.fold(*last, |right, left| node_hash(left, &right)),
        }
    }

    /// Returns the frontier: the roots of the perfect subtrees, largest first,
    /// one per set bit of [`Tree::size`]. Persist it with the size to resume
    /// appending with [`Tree::from_frontier`].
    pub fn frontier(&self) -> &[Hash] {
        &self.frontier
    }
}

/// Largest power of two strictly smaller than `n`. Requires `n >= 2`.
fn split_point(n: usize) -> usize {
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// The Merkle tree hash of a slice of leaf hashes, in O(n) time and
/// O(log n) memory.
fn subtree_root(leaves: &[Hash]) -> Hash {
    let mut tree = Tree::new();
    for leaf in leaves {
        tree.push(*leaf);
    }
    tree.root()
}

/// Builds the inclusion proof (RFC 6962 §2.1.1 `PATH(m, D[n])`, RFC 9162
/// §2.1.3.1) for the leaf at `index` in the tree made of `leaves`, lowest
/// level first.
pub fn inclusion_proof(leaves: &[Hash], index: u64) -> Result<Vec<Hash>, ProofError> {
    let size = leaves.len() as u64;
    let beyond = ProofError::IndexBeyondSize { index, size };
    let mut m = usize::try_from(index).map_err(|_| beyond)?;
    if m >= leaves.len() {
        return Err(beyond);
    }
    let mut proof = Vec::new();
    let mut range = leaves;
    while range.len() > 1 {
        let k = split_point(range.len());
        let (left, right) = range.split_at(k);
        if m < k {
            proof.push(subtree_root(right));
            range = left;
        } else {
            proof.push(subtree_root(left));
            m -= k;
            range = right;
        }
    }
    proof.reverse();
    Ok(proof)
}

/// Builds the inclusion proof of the leaf at `index` in the tree of
/// `before`'s leaves followed by `leaves`, when only `before`'s frontier is
/// known (a log whose first entries were removed): `index` must be one of
/// `leaves`, from `before.size()` on. The proof is the one
/// [`inclusion_proof`] builds from every leaf.
///
/// Every left sibling on the path to such a leaf that lies before it is one
/// of the frontier's perfect subtrees, or is made of them and later leaves.
pub fn inclusion_proof_after(
    before: &Tree,
    leaves: &[Hash],
    index: u64,
) -> Result<Vec<Hash>, ProofError> {
    let cut = before.size();
    let size = cut + leaves.len() as u64;
    if index >= size {
        return Err(ProofError::IndexBeyondSize { index, size });
    }
    if index < cut {
        return Err(ProofError::IndexRemoved { index, first: cut });
    }
    // The frontier's subtrees, as (start, end, root).
    let mut blocks = Vec::with_capacity(before.frontier().len());
    let mut start = 0u64;
    for (bit, root) in (0..64)
        .rev()
        .filter(|b| cut >> b & 1 == 1)
        .zip(before.frontier())
    {
        blocks.push((start, start + (1u64 << bit), *root));
        start += 1u64 << bit;
    }
    let removed = ProofError::IndexRemoved { index, first: cut };
    let root = |s: u64, e: u64| range_root(&blocks, cut, leaves, s, e).ok_or(removed);
    let (mut s, mut e) = (0u64, size);
    let mut proof = Vec::new();
    while e - s > 1 {
        let k = 1u64 << (63 - (e - s - 1).leading_zeros());
        if index < s + k {
            proof.push(root(s + k, e)?);
            e = s + k;
        } else {
            proof.push(root(s, s + k)?);
            s += k;
        }
    }
    proof.reverse();
    Ok(proof)
}

/// The root of leaves `s..e` of [`inclusion_proof_after`]'s tree: the
/// frontier's subtree when it is one, the known leaves' root when they are
/// all known, else the two halves'. `None` for a range inside a frontier
/// subtree, which no proof of a known leaf needs.
fn range_root(
    blocks: &[(u64, u64, Hash)],
    cut: u64,
    leaves: &[Hash],
    s: u64,
    e: u64,
) -> Option<Hash> {
    if s >= cut {
        let (a, b) = (
            usize::try_from(s - cut).ok()?,
            usize::try_from(e - cut).ok()?,
        );
        return Some(subtree_root(leaves.get(a..b)?));
    }
    if let Some((_, _, root)) = blocks.iter().find(|(bs, be, _)| (*bs, *be) == (s, e)) {
        return Some(*root);
    }
    if e - s < 2 || e <= cut {
        return None;
    }
    let k = 1u64 << (63 - (e - s - 1).leading_zeros());
    Some(node_hash(
        &range_root(blocks, cut, leaves, s, s + k)?,
        &range_root(blocks, cut, leaves, s + k, e)?,
    ))
}

/// Builds the consistency proof (RFC 6962 §2.1.2 `PROOF(m, D[n])`, RFC 9162
/// §2.1.4.1) that the tree of the first `old_size` leaves is a prefix of the
/// tree made of all `leaves`.
///
/// The proof for `old_size == leaves.len()` is empty; a proof from the empty
/// tree is refused with [`ProofError::EmptyOldTree`].
pub fn consistency_proof(leaves: &[Hash], old_size: u64) -> Result<Vec<Hash>, ProofError> {
    let size = leaves.len() as u64;
    if old_size > size {
        return Err(ProofError::OldSizeBeyondNewSize {
            size1: old_size,
            size2: size,
        });
    }
    if old_size == 0 {
        return Err(ProofError::EmptyOldTree);
    }
    // old_size <= leaves.len(), so it fits in usize.
    let mut m = old_size as usize;
    let mut proof = Vec::new();
    let mut range = leaves;
    // `whole` is SUBPROOF's flag b: whether `range` starts at the old tree's
    // left edge, so that the verifier already knows MTH(D[0:m]).
    let mut whole = true;
    loop {
        let n = range.len();
        if m == n {
            if !whole {
                proof.push(subtree_root(range));
            }
            break;
        }
        let k = split_point(n);
        let (left, right) = range.split_at(k);
        if m <= k {
            proof.push(subtree_root(right));
            range = left;
        } else {
            proof.push(subtree_root(left));
            m -= k;
            range = right;
            whole = false;
        }
    }
    proof.reverse();
    Ok(proof)
}

/// Number of hashes in the inclusion proof of `index` in a tree of `size`
/// leaves. Requires `index < size`.
fn inclusion_proof_len(index: u64, size: u64) -> usize {
    // Levels below the node where the paths to `index` and `size - 1` fork...
    let inner = u64::BITS - (index ^ (size - 1)).leading_zeros();
    // ...plus one left sibling per set bit above it.
    let border = index.checked_shr(inner).unwrap_or(0).count_ones();
    (inner + border) as usize
}

/// Number of hashes in the consistency proof from `size1` to `size2` leaves.
/// Requires `0 < size1 < size2`.
fn consistency_proof_len(size1: u64, size2: u64) -> usize {
    let fork = u64::BITS - ((size1 - 1) ^ (size2 - 1)).leading_zeros();
    let border = (size1 - 1).checked_shr(fork).unwrap_or(0).count_ones();
    // The proof starts at the height of the rightmost perfect subtree of the
    // old tree; `fork > shift` because size1 - 1 ends in `shift` one bits.
    let shift = size1.trailing_zeros();
    // A perfect old tree is its own first node, which the verifier knows.
    let seed = usize::from(!size1.is_power_of_two());
    seed + (fork - shift + border) as usize
}

/// Compares two hashes in constant time.
fn hashes_equal(a: &Hash, b: &Hash) -> bool {
    a.as_slice().ct_eq(b.as_slice()).into()
}

/// Verifies that `leaf` is the leaf hash at `index` in the tree of `size`
/// leaves whose root is `root`, following RFC 9162 §2.1.3.2.
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexBeyondSize { index, size });
    }
    let want = inclusion_proof_len(index, size);
    let wrong_size = ProofError::WrongProofSize {
        got: proof.len(),
        want,
    };
    if proof.len() != want {
        return Err(wrong_size);
    }
    // RFC 9162 §2.1.3.2, steps 2 to 5.
    let mut fn_ = index;
    let mut sn = size - 1;
    let mut r = *leaf;
    for p in proof {
        if sn == 0 {
            return Err(wrong_size);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(wrong_size);
    }
    if hashes_equal(&r, root) {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

/// Verifies that the tree of `size1` leaves with root `root1` is a prefix of
/// the tree of `size2` leaves with root `root2`, following RFC 9162
/// §2.1.4.2.
///
/// Special cases: `size1 > size2` and `size1 == 0` are refused; for
/// `size1 == size2` the proof must be empty and the roots equal.
pub fn verify_consistency(
    size1: u64,
    size2: u64,
    proof: &[Hash],
    root1: &Hash,
    root2: &Hash,
) -> Result<(), ProofError> {
    if size1 > size2 {
        return Err(ProofError::OldSizeBeyondNewSize { size1, size2 });
    }
    if size1 == 0 {
        return Err(ProofError::EmptyOldTree);
    }
    if size1 == size2 {
        if !proof.is_empty() {
            return Err(ProofError::WrongProofSize {
                got: proof.len(),
                want: 0,
            });
        }
        return if hashes_equal(root1, root2) {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    let want = consistency_proof_len(size1, size2);
    let wrong_size = ProofError::WrongProofSize {
        got: proof.len(),
        want,
    };
    // Step 1 (an empty proof fails) is covered: `want` is at least 1.
    if proof.len() != want {
        return Err(wrong_size);
    }
    // Step 2: a perfect old tree is the first node of its own proof.
    let mut path = proof.iter();
    let first = if size1.is_power_of_two() {
        *root1
    } else {
        match path.next() {
            Some(h) => *h,
            None => return Err(wrong_size),
        }
    };
    // Steps 3 and 4.
    let mut fn_ = size1 - 1;
    let mut sn = size2 - 1;
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    // Step 5.
    let mut fr = first;
    let mut sr = first;
    // Step 6.
    for c in path {
        if sn == 0 {
            return Err(wrong_size);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    // Step 7.
    if sn != 0 {
        return Err(wrong_size);
    }
    if !hashes_equal(&fr, root1) {
        return Err(ProofError::OldRootMismatch);
    }
    if !hashes_equal(&sr, root2) {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_point_is_largest_smaller_power_of_two() {
        for n in 2..1000usize {
            let k = split_point(n);
            assert!(k.is_power_of_two() && k < n && 2 * k >= n, "n={n} k={k}");
        }
    }

    #[test]
    fn proof_lengths_match_generated_proofs() {
        let leaves: Vec<Hash> = (0u32..40).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        for n in 1..=leaves.len() {
            for i in 0..n {
                let proof = inclusion_proof(&leaves[..n], i as u64).unwrap();
                assert_eq!(proof.len(), inclusion_proof_len(i as u64, n as u64));
            }
            for m in 1..n {
                let proof = consistency_proof(&leaves[..n], m as u64).unwrap();
                assert_eq!(proof.len(), consistency_proof_len(m as u64, n as u64));
            }
        }
    }

    #[test]
    fn proof_lengths_do_not_overflow_at_the_top() {
        assert_eq!(inclusion_proof_len(u64::MAX - 1, u64::MAX), 63);
        assert_eq!(inclusion_proof_len(0, u64::MAX), 64);
        // At most one seed, 64 inner and 64 border hashes.
        assert!(consistency_proof_len(1 << 63, u64::MAX) <= 129);
        assert!(consistency_proof_len(3, u64::MAX) <= 129);
    }
}
