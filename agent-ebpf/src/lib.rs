//! Empty on purpose: the programs live in `main.rs`, built as the `osprey-ebpf` binary for the
//! BPF target. This library only lets `agent` depend on the crate so cargo tracks its changes.
#![no_std]
