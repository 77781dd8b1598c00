//! Benchmarks of vigil; see the `benches` folder and BENCHMARKS.md.

pub mod statements;
