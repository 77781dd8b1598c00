//! vigil's tamper-evident audit log primitives: an RFC 6962 / RFC 9162
//! Merkle tree and Ed25519-signed C2SP checkpoints.
//!
//! - [`Tree`] is the writer's append-only tree. It keeps only its frontier
//!   (at most 64 hashes), which it can persist and restore.
//! - [`inclusion_proof`] and [`consistency_proof`] build proofs from the
//!   leaf hashes. [`verify_inclusion`] and [`verify_consistency`] check them
//!   as RFC 9162 §2.1.3.2 and §2.1.4.2 say, failing with a [`ProofError`].
//! - [`CheckpointSigner`] signs a [`Checkpoint`] (origin, size, root) as a
//!   C2SP signed note. [`CheckpointVerifier`] needs only the public verifier
//!   key to check it, failing with a [`NoteError`].
//!
//! An auditor who keeps one checkpoint can later demand a consistency proof
//! to a newer one. A log that rewrote, dropped or reordered any event sealed
//! before the kept checkpoint cannot produce that proof.
//!
//! ```
//! use vigil_seal::{
//!     Checkpoint, CheckpointSigner, CheckpointVerifier, Tree, consistency_proof,
//!     inclusion_proof, leaf_hash, verify_consistency, verify_inclusion,
//! };
//!
//! // The writer appends events and signs a checkpoint.
//! let events = [&b"login alice"[..], b"select * from cards", b"logout alice"];
//! let leaves: Vec<_> = events.iter().map(|e| leaf_hash(e)).collect();
//! let mut tree = Tree::new();
//! for leaf in &leaves {
//!     tree.push(*leaf);
//! }
//! let signer = CheckpointSigner::new("vigil.example/audit", &[7; 32])?;
//! let checkpoint = Checkpoint {
//!     origin: "vigil.example/audit".into(),
//!     size: tree.size(),
//!     root: tree.root(),
//!     extensions: vec![],
//! };
//! let note = signer.sign(&checkpoint)?;
//!
//! // The auditor holds only the verifier key.
//! let verifier = CheckpointVerifier::parse(&signer.verifier_key())?;
//! let verified = verifier.verify(&note)?;
//! assert_eq!(verified, checkpoint);
//!
//! // Event 1 is in the checkpointed tree...
//! let proof = inclusion_proof(&leaves, 1)?;
//! verify_inclusion(&leaves[1], 1, verified.size, &proof, &verified.root)?;
//!
//! // ...and the tree of the first two events is a prefix of it.
//! let old_root = { let mut t = Tree::new(); t.push(leaves[0]); t.push(leaves[1]); t.root() };
//! let proof = consistency_proof(&leaves, 2)?;
//! verify_consistency(2, verified.size, &proof, &old_root, &verified.root)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod acra;
mod anchor;
pub use anchor::anchor_tree;
mod chain;
mod checkpoint;
mod leaves;
mod line;
mod merkle;
mod sha;
mod verify;
mod writer;

pub use checkpoint::parse_unverified as parse_note_unverified;
pub use checkpoint::{
    Checkpoint, CheckpointSigner, CheckpointVerifier, KeyError, MAX_SIGNATURES, NoteError,
};
pub use line::{
    LineError, LineFormat, SEAL_FORMAT_VERSION, Seal, entry_leaf, parse_sealed, record_parts,
    split_sealed, write_sealed,
};
pub use merkle::{
    FrontierError, Hash, ProofError, Tree, consistency_proof, empty_root, hash_from_hex,
    hash_to_hex, inclusion_proof, inclusion_proof_after, leaf_hash, node_hash, verify_consistency,
    verify_inclusion,
};
pub use verify::{
    Bookmark, Failure, FailureKind, KeyLookup, Report, Trimmed, Verifier, VerifyError,
};
pub use writer::{
    DurableHandle, Recovery, SealConfig, SealError, SealKeys, Sealer, SyncPolicy, list_segments,
    parse_segment_name, segment_name,
};
