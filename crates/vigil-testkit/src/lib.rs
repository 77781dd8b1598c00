//! Helpers for vigil's tests: throwaway servers on free ports in temporary
//! directories, and the `vigil` binary under test.
