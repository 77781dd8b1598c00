//! Generated proofs against the verifiers, the compact `Tree` against a naive
//! recursive Merkle tree hash, and property tests of the verifiers.

#![allow(clippy::unwrap_used, clippy::string_slice)] // test helpers outside #[test] fns

use std::sync::LazyLock;

use proptest::prelude::*;
use vigil_seal::{
    FrontierError, Hash, ProofError, Tree, consistency_proof, empty_root, inclusion_proof,
    leaf_hash, node_hash, verify_consistency, verify_inclusion,
};

/// Distinct leaves: the leaf hash of each index.
fn leaves(n: usize) -> Vec<Hash> {
    (0..n as u64).map(|i| leaf_hash(&i.to_be_bytes())).collect()
}

/// RFC 6962 §2.1 MTH, written straight from the definition.
fn naive_root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let mut k = 1;
            while k * 2 < n {
                k *= 2;
            }
            node_hash(&naive_root(&leaves[..k]), &naive_root(&leaves[k..]))
        }
    }
}

/// Roots of every prefix of `leaves`, sizes 0..=leaves.len().
fn prefix_roots(leaves: &[Hash]) -> Vec<Hash> {
    let mut tree = Tree::new();
    let mut roots = vec![tree.root()];
    for leaf in leaves {
        tree.push(*leaf);
        roots.push(tree.root());
    }
    roots
}

/// The left/right placement of each hash of PATH(m, D[n]) per RFC 6962
/// §2.1.1 (true: the sibling is on the left), lowest level first.
fn path_shape(m: u64, n: u64) -> Vec<bool> {
    if n <= 1 {
        return Vec::new();
    }
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    let (mut shape, left) = if m < k {
        (path_shape(m, k), false)
    } else {
        (path_shape(m - k, n - k), true)
    };
    shape.push(left);
    shape
}

const MAX_EXHAUSTIVE: usize = 64;

#[test]
fn every_inclusion_proof_up_to_64_verifies_and_only_at_its_index() {
    let leaves = leaves(MAX_EXHAUSTIVE);
    let roots = prefix_roots(&leaves);
    for n in 1..=MAX_EXHAUSTIVE {
        let size = n as u64;
        for i in 0..size {
            let proof = inclusion_proof(&leaves[..n], i).unwrap();
            let leaf = &leaves[i as usize];
            verify_inclusion(leaf, i, size, &proof, &roots[n]).unwrap();
            // Every other index and size for small trees; Go's corruptions
            // (i ± 1, i ^ 2, n * 2, n / 2) beyond.
            let small = n <= 24;
            let near = |x: u64, y: u64| small || x.abs_diff(y) == 1 || x == y ^ 2;
            for j in (0..size).filter(|&j| j != i && near(i, j)) {
                assert!(verify_inclusion(leaf, j, size, &proof, &roots[n]).is_err());
                assert!(verify_inclusion(&leaves[j as usize], i, size, &proof, &roots[n]).is_err());
            }
            let other_sizes = (0..=MAX_EXHAUSTIVE)
                .filter(|&o| o != n && (small || o == n * 2 || o == n / 2 || o.abs_diff(n) == 1));
            for other in other_sizes {
                assert!(
                    verify_inclusion(leaf, i, other as u64, &proof, &roots[other]).is_err(),
                    "proof ({i}, {n}) verified at size {other}"
                );
            }
            assert_eq!(
                verify_inclusion(leaf, size, size, &proof, &roots[n]),
                Err(ProofError::IndexBeyondSize { index: size, size })
            );
        }
        assert_eq!(
            inclusion_proof(&leaves[..n], size),
            Err(ProofError::IndexBeyondSize { index: size, size })
        );
    }
}

#[test]
fn every_consistency_proof_up_to_64_verifies() {
    let leaves = leaves(MAX_EXHAUSTIVE);
    let roots = prefix_roots(&leaves);
    for n in 1..=MAX_EXHAUSTIVE {
        for m in 1..=n {
            let proof = consistency_proof(&leaves[..n], m as u64).unwrap();
            let (size1, size2) = (m as u64, n as u64);
            verify_consistency(size1, size2, &proof, &roots[m], &roots[n]).unwrap();
            if m == n {
                assert!(proof.is_empty());
                continue;
            }
            // Against other (size1, size2) with their true roots: all pairs
            // for small trees, the corruptions of Go's verify_test.go beyond.
            let all_pairs: Vec<(usize, usize)> = if n <= 20 {
                (0..=20)
                    .flat_map(|a| (a..=20).map(move |b| (a, b)))
                    .collect()
            } else {
                let (m1, n1) = (m as isize, n as isize);
                [
                    (m1 - 1, n1),
                    (m1 + 1, n1),
                    (m1 ^ 2, n1),
                    (m1, n1 * 2),
                    (m1, n1 / 2),
                ]
                .into_iter()
                .chain((1..=3).map(|d| (m1, n1 - d)))
                .filter(|&(a, b)| a >= 0 && a <= b && b <= MAX_EXHAUSTIVE as isize)
                .map(|(a, b)| (a as usize, b as usize))
                .collect()
            };
            for (m2, n2) in all_pairs {
                {
                    if (m2, n2) != (m, n) {
                        let r = verify_consistency(
                            m2 as u64, n2 as u64, &proof, &roots[m2], &roots[n2],
                        );
                        assert!(r.is_err(), "proof ({m}, {n}) verified at ({m2}, {n2})");
                    }
                }
            }
            // Swapped or foreign roots.
            assert!(verify_consistency(size1, size2, &proof, &roots[n], &roots[m]).is_err());
            assert!(verify_consistency(size1, size2, &proof, &roots[m - 1], &roots[n]).is_err());
            assert!(verify_consistency(size1, size2, &proof, &roots[m], &roots[n - 1]).is_err());
        }
        assert_eq!(
            consistency_proof(&leaves[..n], 0),
            Err(ProofError::EmptyOldTree)
        );
        assert_eq!(
            consistency_proof(&leaves[..n], n as u64 + 1),
            Err(ProofError::OldSizeBeyondNewSize {
                size1: n as u64 + 1,
                size2: n as u64
            })
        );
    }
}

#[test]
fn consistency_special_cases() {
    let r = leaf_hash(b"x");
    let s = leaf_hash(b"y");
    assert_eq!(verify_consistency(3, 3, &[], &r, &r), Ok(()));
    assert_eq!(
        verify_consistency(3, 3, &[], &r, &s),
        Err(ProofError::RootMismatch)
    );
    assert_eq!(
        verify_consistency(3, 3, &[r], &r, &r),
        Err(ProofError::WrongProofSize { got: 1, want: 0 })
    );
    assert_eq!(
        verify_consistency(0, 0, &[], &empty_root(), &empty_root()),
        Err(ProofError::EmptyOldTree)
    );
    assert_eq!(
        verify_consistency(0, 5, &[], &empty_root(), &r),
        Err(ProofError::EmptyOldTree)
    );
    assert_eq!(
        verify_consistency(4, 3, &[], &r, &s),
        Err(ProofError::OldSizeBeyondNewSize { size1: 4, size2: 3 })
    );
    assert_eq!(
        verify_consistency(1, 2, &[], &r, &s),
        Err(ProofError::WrongProofSize { got: 0, want: 1 })
    );
    // Enormous sizes neither overflow nor accept.
    let long = vec![r; 200];
    for (m, n) in [(1, u64::MAX), (u64::MAX - 1, u64::MAX), (1 << 63, u64::MAX)] {
        assert!(verify_consistency(m, n, &long, &r, &s).is_err());
        assert!(verify_consistency(m, n, &[r], &r, &s).is_err());
    }
    for (i, n) in [
        (0, u64::MAX),
        (u64::MAX - 1, u64::MAX),
        (u64::MAX, u64::MAX),
    ] {
        assert!(verify_inclusion(&r, i, n, &long, &s).is_err());
    }
}

/// An RFC 6962 root does not commit to the tree size: the same proof and
/// root can verify for another size whose tree has the same shape along the
/// path. Callers must take size and root from one verified checkpoint; the
/// exhaustive tests above show that with true (size, root) pairs every
/// wrong size is rejected.
#[test]
fn a_root_alone_does_not_bind_the_size() {
    let leaves = leaves(3);
    let root3 = naive_root(&leaves);
    let proof = inclusion_proof(&leaves, 0).unwrap();
    verify_inclusion(&leaves[0], 0, 3, &proof, &root3).unwrap();
    assert_eq!(path_shape(0, 3), path_shape(0, 4));
    verify_inclusion(&leaves[0], 0, 4, &proof, &root3).unwrap();
}

#[test]
fn tree_matches_naive_root_and_round_trips_up_to_300() {
    let leaves = leaves(300);
    let mut tree = Tree::new();
    assert_eq!(tree.root(), naive_root(&[]));
    for (i, leaf) in leaves.iter().enumerate() {
        assert_eq!(tree.push(*leaf), i as u64);
        let n = i + 1;
        assert_eq!(tree.size(), n as u64);
        assert_eq!(tree.root(), naive_root(&leaves[..n]), "size {n}");
        assert_eq!(tree.frontier().len(), n.count_ones() as usize);

        let mut restored = Tree::from_frontier(tree.size(), tree.frontier().to_vec()).unwrap();
        assert_eq!(restored, tree);
        assert_eq!(restored.root(), tree.root());
        // A restored tree keeps growing like the original.
        for extra in leaves.iter().skip(n).take(5) {
            restored.push(*extra);
        }
        let grown = (n + 5).min(leaves.len());
        assert_eq!(restored.root(), naive_root(&leaves[..grown]));
    }
}

#[test]
fn frontier_hashes_are_perfect_subtree_roots() {
    let leaves = leaves(13); // 0b1101: subtrees of 8, 4 and 1 leaves.
    let mut tree = Tree::new();
    for leaf in &leaves {
        tree.push(*leaf);
    }
    assert_eq!(
        tree.frontier(),
        [
            naive_root(&leaves[..8]),
            naive_root(&leaves[8..12]),
            leaves[12]
        ]
    );
    let mut by_data = Tree::new();
    for i in 0..13u64 {
        assert_eq!(by_data.push_data(&i.to_be_bytes()), leaves[i as usize]);
    }
    assert_eq!(by_data, tree);
}

#[test]
fn from_frontier_rejects_bad_state() {
    let h = leaf_hash(b"x");
    assert_eq!(
        Tree::from_frontier(3, vec![h]),
        Err(FrontierError::WrongLength {
            size: 3,
            got: 1,
            want: 2
        })
    );
    assert_eq!(
        Tree::from_frontier(0, vec![h]),
        Err(FrontierError::WrongLength {
            size: 0,
            got: 1,
            want: 0
        })
    );
    assert_eq!(
        Tree::from_frontier(u64::MAX, vec![h; 64]),
        Err(FrontierError::Full { size: u64::MAX })
    );
    // The largest tree that can still grow.
    let mut tree = Tree::from_frontier(u64::MAX - 1, vec![h; 63]).unwrap();
    tree.push(h);
    assert_eq!(tree.size(), u64::MAX);
    assert_eq!(tree.frontier().len(), 64);
}

/// Leaves and prefix roots shared by the property tests (the prefix roots
/// come from `Tree`, checked against `naive_root` above).
static LEAVES: LazyLock<Vec<Hash>> = LazyLock::new(|| leaves(400));
static ROOTS: LazyLock<Vec<Hash>> = LazyLock::new(|| prefix_roots(&LEAVES));

/// A tree of 1..=max leaves, a leaf index in it, and a seed for mutations.
fn sized(max: usize) -> impl Strategy<Value = (usize, usize)> {
    (1..=max).prop_flat_map(|n| (Just(n), 0..n))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn inclusion_rejects_any_flipped_proof_bit(
        (n, i) in sized(200), pick in any::<prop::sample::Index>(), bit in 0..256usize,
    ) {
        let leaves = &LEAVES[..n];
        let root = ROOTS[n];
        let mut proof = inclusion_proof(leaves, i as u64).unwrap();
        prop_assume!(!proof.is_empty());
        let k = pick.index(proof.len());
        proof[k][bit / 8] ^= 1 << (bit % 8);
        let r = verify_inclusion(&leaves[i], i as u64, n as u64, &proof, &root);
        prop_assert_eq!(r, Err(ProofError::RootMismatch));
    }

    #[test]
    fn inclusion_rejects_wrong_index_or_leaf(
        (n, i) in sized(200), wrong in any::<u64>(),
    ) {
        let leaves = &LEAVES[..n];
        let root = ROOTS[n];
        let proof = inclusion_proof(leaves, i as u64).unwrap();
        prop_assume!(wrong != i as u64);
        prop_assert!(verify_inclusion(&leaves[i], wrong, n as u64, &proof, &root).is_err());
        let other = leaf_hash(&wrong.to_le_bytes());
        prop_assert!(verify_inclusion(&other, i as u64, n as u64, &proof, &root).is_err());
    }

    /// Against the root of the true size, a wrong size verifies exactly when
    /// the RFC 6962 path has the same shape there (see
    /// `a_root_alone_does_not_bind_the_size`); against the root of the
    /// claimed size, never.
    #[test]
    fn inclusion_rejects_wrong_size(
        (n, i) in sized(200), wrong in 1..400u64,
    ) {
        let leaves = &LEAVES[..400];
        let size = n as u64;
        prop_assume!(wrong != size && (i as u64) < wrong);
        let root = ROOTS[n];
        let proof = inclusion_proof(&leaves[..n], i as u64).unwrap();
        let same_shape = path_shape(i as u64, wrong) == path_shape(i as u64, size);
        let r = verify_inclusion(&leaves[i], i as u64, wrong, &proof, &root);
        prop_assert_eq!(r.is_ok(), same_shape);
        let wrong_root = ROOTS[wrong as usize];
        let r = verify_inclusion(&leaves[i], i as u64, wrong, &proof, &wrong_root);
        prop_assert!(r.is_err());
    }

    #[test]
    fn consistency_rejects_any_flipped_proof_bit(
        (n, m) in sized(200), pick in any::<prop::sample::Index>(), bit in 0..256usize,
    ) {
        let (m, n) = (m + 1, n + 1); // 1 <= m <= n, m < n below
        prop_assume!(m < n);
        let leaves = &LEAVES[..n];
        let roots = (ROOTS[m], ROOTS[n]);
        let mut proof = consistency_proof(leaves, m as u64).unwrap();
        let k = pick.index(proof.len());
        proof[k][bit / 8] ^= 1 << (bit % 8);
        prop_assert!(verify_consistency(m as u64, n as u64, &proof, &roots.0, &roots.1).is_err());
    }

    #[test]
    fn consistency_rejects_wrong_sizes_with_their_roots(
        (n, m) in sized(150), m2 in 0..200usize, n2 in 0..200usize,
    ) {
        let m = m + 1;
        let leaves = &LEAVES[..200];
        prop_assume!((m2, n2) != (m, n) && m2 <= n2);
        let proof = consistency_proof(&leaves[..n], m as u64).unwrap();
        let r = verify_consistency(
            m2 as u64,
            n2 as u64,
            &proof,
            &ROOTS[m2],
            &ROOTS[n2],
        );
        // Equal sizes with an empty proof only check that the roots match.
        let trivially_equal = m2 == n2 && m2 > 0 && proof.is_empty();
        prop_assert_eq!(r.is_ok(), trivially_equal);
    }

    #[test]
    fn consistency_rejects_truncated_or_extended_proofs(
        (n, m) in sized(200), extra in any::<[u8; 32]>(), at in any::<prop::sample::Index>(),
    ) {
        let m = m + 1;
        prop_assume!(m < n);
        let leaves = &LEAVES[..n];
        let (r1, r2) = (ROOTS[m], ROOTS[n]);
        let proof = consistency_proof(leaves, m as u64).unwrap();
        let mut longer = proof.clone();
        longer.insert(at.index(proof.len() + 1), extra);
        prop_assert!(verify_consistency(m as u64, n as u64, &longer, &r1, &r2).is_err());
        let mut shorter = proof.clone();
        shorter.remove(at.index(proof.len()));
        prop_assert!(verify_consistency(m as u64, n as u64, &shorter, &r1, &r2).is_err());
    }
}

#[test]
fn proofs_after_a_removed_prefix_equal_the_proofs_from_every_leaf() {
    let all = leaves(70);
    for cut in 0..all.len() {
        let mut before = vigil_seal::Tree::new();
        for leaf in &all[..cut] {
            before.push(*leaf);
        }
        for size in cut + 1..=all.len() {
            let known = &all[cut..size];
            for index in cut..size {
                let want = inclusion_proof(&all[..size], index as u64).unwrap();
                let got = vigil_seal::inclusion_proof_after(&before, known, index as u64).unwrap();
                assert_eq!(got, want, "cut {cut}, size {size}, index {index}");
            }
            if cut > 0 {
                let err = vigil_seal::inclusion_proof_after(&before, known, cut as u64 - 1);
                assert!(
                    matches!(err, Err(vigil_seal::ProofError::IndexRemoved { .. })),
                    "{err:?}"
                );
            }
        }
    }
}
