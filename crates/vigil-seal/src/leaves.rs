//! The writer's Merkle tree, fed on a thread of its own.
//!
//! The sealer hashes each line once, without its MAC ([`EntryHash`]); the
//! end of the Merkle leaf (the MAC and the padding, one or two SHA-256
//! blocks) and the tree's interior nodes (two on average) are left, and
//! nothing needs them before the next checkpoint. So the sealer puts each
//! entry's hash state and MAC into a batch, and full batches go to a thread
//! that finishes the leaves and pushes them into the tree, in order.
//! [`Leaves::tree`] hands the rest of the current batch over and waits for
//! the tree with every entry pushed so far: once per checkpoint.
//!
//! With a single CPU, or when the thread cannot be started, the leaves are
//! hashed at once on the sealing thread.

use std::fmt;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::thread::JoinHandle;

use crate::line::EntryHash;
use crate::merkle::{Hash, Tree};

/// Entries sent to the thread at once (about 180 KiB): each batch may cost
/// a wake-up of the thread, a system call.
const BATCH: usize = 1024;

/// Batches in flight to the thread: bounds the memory and how far the
/// hashing may fall behind the sealing before the sealer waits, for
/// instance while the thread waits for a CPU.
const BATCHES_AHEAD: usize = 4;

/// The Merkle tree of the sealed lines.
pub(crate) struct Leaves {
    imp: Imp,
}

enum Imp {
    /// Hashed at once.
    Inline(Tree),
    /// Hashed by the thread.
    Thread(Worker),
}

/// The hashing thread and the batch being filled for it.
struct Worker {
    batch: Batch,
    /// `None` only while dropping.
    tx: Option<SyncSender<Job>>,
    /// Batches the thread is done with, for reuse.
    spare: Receiver<Batch>,
    handle: Option<JoinHandle<()>>,
}

/// Entries' hash states and MACs, in order.
type Batch = Vec<(EntryHash, Hash)>;

enum Job {
    /// Push the entries' leaf hashes into the tree.
    Hash(Batch),
    /// Send a copy of the tree.
    Tree(SyncSender<Tree>),
}

impl fmt::Debug for Leaves {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = match self.imp {
            Imp::Inline(_) => "inline",
            Imp::Thread(_) => "thread",
        };
        f.debug_struct("Leaves").field("mode", &mode).finish()
    }
}

impl Leaves {
    /// Goes on from `tree`, on a thread of its own when there is more than
    /// one CPU.
    pub(crate) fn new(tree: Tree) -> Leaves {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        if cpus < 2 {
            return Leaves::inline(tree);
        }
        let (tx, rx) = mpsc::sync_channel::<Job>(BATCHES_AHEAD);
        let (spare_tx, spare) = mpsc::channel();
        // The tree moves into the thread; keep a copy in case it cannot start.
        let copy = tree.clone();
        let spawned = std::thread::Builder::new()
            .name("vigil-seal-tree".into())
            .spawn(move || hash_batches(tree, &rx, &spare_tx));
        match spawned {
            Ok(handle) => Leaves {
                imp: Imp::Thread(Worker {
                    batch: Batch::default(),
                    tx: Some(tx),
                    spare,
                    handle: Some(handle),
                }),
            },
            Err(_) => Leaves::inline(copy),
        }
    }

    /// Hashes every line at once, on the calling thread.
    pub(crate) fn inline(tree: Tree) -> Leaves {
        Leaves {
            imp: Imp::Inline(tree),
        }
    }

    /// Appends the leaf of the entry hashed as `entry` whose MAC is `mac`.
    pub(crate) fn push(&mut self, entry: EntryHash, mac: &Hash) {
        match &mut self.imp {
            Imp::Inline(tree) => {
                tree.push(entry.leaf(mac));
            }
            Imp::Thread(w) => {
                w.batch.push((entry, *mac));
                if w.batch.len() >= BATCH {
                    w.send_batch();
                }
            }
        }
    }

    /// The tree of every line pushed so far.
    pub(crate) fn tree(&mut self) -> Tree {
        match &mut self.imp {
            Imp::Inline(tree) => tree.clone(),
            Imp::Thread(w) => w.tree(),
        }
    }
}

impl Worker {
    /// Hands the current batch to the thread and starts a new one.
    fn send_batch(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let mut next = self
            .spare
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(BATCH));
        next.clear();
        let full = std::mem::replace(&mut self.batch, next);
        self.send(Job::Hash(full));
    }

    fn tree(&mut self) -> Tree {
        self.send_batch();
        let (reply, answer) = mpsc::sync_channel(1);
        self.send(Job::Tree(reply));
        match answer.recv() {
            Ok(tree) => tree,
            Err(_) => self.died(),
        }
    }

    fn send(&mut self, job: Job) {
        let sent = self.tx.as_ref().map(|tx| tx.send(job));
        if !matches!(sent, Some(Ok(()))) {
            self.died();
        }
    }

    /// The thread is gone, which only a panic in it does: the sealer
    /// cannot go on without its tree, so the panic goes on here.
    fn died(&mut self) -> ! {
        self.tx = None;
        crate::chain::rethrow(self.handle.take(), "Merkle tree")
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Closing the channel ends the thread once it has hashed what it has.
        self.tx = None;
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

/// The thread: hashes batches into `tree` and answers requests for it,
/// until the sealer is gone.
fn hash_batches(mut tree: Tree, jobs: &Receiver<Job>, spare: &Sender<Batch>) {
    while let Ok(job) = jobs.recv() {
        match job {
            Job::Hash(mut batch) => {
                for (entry, mac) in batch.drain(..) {
                    tree.push(entry.leaf(&mac));
                }
                // The sealer may be gone; then nobody reuses it.
                let _ = spare.send(batch);
            }
            Job::Tree(reply) => {
                let _ = reply.send(tree.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_thread_builds_the_same_tree() {
        let lines: Vec<Vec<u8>> = (0..5000u32)
            .map(|i| format!("line {i} {}", "x".repeat((i % 700) as usize)).into_bytes())
            .collect();
        let entry = |line: &[u8]| EntryHash::new(line, b"");
        let mut inline = Leaves::inline(Tree::new());
        let mut thread = Leaves::new(Tree::new());
        for (i, line) in lines.iter().enumerate() {
            let mac = [i as u8; 32];
            inline.push(entry(line), &mac);
            thread.push(entry(line), &mac);
            if i % 1777 == 0 {
                assert_eq!(inline.tree(), thread.tree(), "after {i}");
            }
        }
        let tree = thread.tree();
        assert_eq!(tree, inline.tree());
        assert_eq!(tree.size(), 5000);
        // From a restored tree too.
        let mut resumed = Leaves::new(tree.clone());
        resumed.push(entry(b"one more"), &[1; 32]);
        inline.push(entry(b"one more"), &[1; 32]);
        assert_eq!(resumed.tree(), inline.tree());
    }
}
