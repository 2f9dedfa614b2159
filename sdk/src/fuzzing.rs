//! The fuzz targets' bodies (`fuzz/fuzz_targets/`): bytes from a peer through the decoding
//! the agent's extension manager and an extension use. A unit test runs them over the seeds
//! and a few thousand mutations of them on every `cargo xtask test`; `cargo xtask fuzz` runs
//! libFuzzer on them.
//!
//! The manager target decodes with the same generated processor and [`Bounded`] input as the
//! agent's manager, in front of a handler that answers every call with defaults: what is
//! fuzzed is the reading of requests, not the agent's answers to them.

use std::{
    io::{Cursor, Write},
    sync::{Arc, Mutex},
};

use thrift::{
    protocol::{TBinaryInputProtocol, TBinaryOutputProtocol},
    server::TProcessor as _,
};

use crate::{
    context::Context,
    osquery::{
        ExtensionManagerSyncClient, ExtensionManagerSyncHandler, ExtensionManagerSyncProcessor,
        ExtensionPluginRequest, ExtensionRegistry, ExtensionResponse, ExtensionRouteUUID,
        ExtensionStatus, ExtensionSyncClient, ExtensionSyncHandler, InternalExtensionInfo,
        InternalExtensionList, InternalOptionList, TExtensionManagerSyncClient as _,
        TExtensionSyncClient as _,
    },
    wire::{Bounded, REPLY_MAX, REQUEST_MAX},
};

struct Defaults;

impl ExtensionSyncHandler for Defaults {
    fn handle_ping(&self) -> thrift::Result<ExtensionStatus> {
        Ok(ExtensionStatus::default())
    }
    fn handle_call(
        &self,
        _: String,
        _: String,
        _: ExtensionPluginRequest,
    ) -> thrift::Result<ExtensionResponse> {
        Ok(ExtensionResponse::default())
    }
    fn handle_shutdown(&self) -> thrift::Result<()> {
        Ok(())
    }
}

impl ExtensionManagerSyncHandler for Defaults {
    fn handle_extensions(&self) -> thrift::Result<InternalExtensionList> {
        Ok(InternalExtensionList::new())
    }
    fn handle_options(&self) -> thrift::Result<InternalOptionList> {
        Ok(InternalOptionList::new())
    }
    fn handle_register_extension(
        &self,
        _: InternalExtensionInfo,
        _: ExtensionRegistry,
    ) -> thrift::Result<ExtensionStatus> {
        Ok(ExtensionStatus::default())
    }
    fn handle_deregister_extension(
        &self,
        _: ExtensionRouteUUID,
    ) -> thrift::Result<ExtensionStatus> {
        Ok(ExtensionStatus::default())
    }
    fn handle_query(&self, _: String) -> thrift::Result<ExtensionResponse> {
        Ok(ExtensionResponse::default())
    }
    fn handle_get_query_columns(&self, _: String) -> thrift::Result<ExtensionResponse> {
        Ok(ExtensionResponse::default())
    }
}

/// Requests to the manager, read as the manager reads them until one cannot be read.
/// Returns how many were read whole.
pub fn manager_request(data: &[u8]) -> usize {
    let processor = ExtensionManagerSyncProcessor::new(Defaults);
    let mut i = Bounded::new(
        TBinaryInputProtocol::new(Cursor::new(data), true),
        REQUEST_MAX,
    );
    let mut o = TBinaryOutputProtocol::new(std::io::sink(), true);
    let mut n = 0;
    while processor.process(&mut i, &mut o).is_ok() && !i.failed() {
        n += 1;
    }
    n
}

/// An extension's reply to `call`, read as the manager reads it.
pub fn extension_reply(data: &[u8]) -> bool {
    let i = Bounded::new(
        TBinaryInputProtocol::new(Cursor::new(data), true),
        REPLY_MAX,
    );
    let o = TBinaryOutputProtocol::new(std::io::sink(), true);
    let mut c = ExtensionSyncClient::new(i, o);
    c.call("table".into(), "t".into(), ExtensionPluginRequest::new())
        .is_ok()
}

/// A query context, read as a table plugin reads it.
pub fn context(data: &[u8]) -> bool {
    Context::parse(&String::from_utf8_lossy(data)).is_ok()
}

/// A writer whose bytes stay readable after the protocol that owns it is gone.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::ErrorKind::Other)?
            .extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Well-formed requests, one of each manager method, as a client writes them (seeds of the
/// manager target).
pub fn seeds() -> Vec<Vec<u8>> {
    type Client = ExtensionManagerSyncClient<
        TBinaryInputProtocol<Cursor<Vec<u8>>>,
        TBinaryOutputProtocol<Shared>,
    >;
    let calls: [&dyn Fn(&mut Client); 8] = [
        &|c| drop(c.ping()),
        &|c| drop(c.query("SELECT * FROM osquery_info WHERE pid = 1".into())),
        &|c| drop(c.get_query_columns("SELECT 1 AS x".into())),
        &|c| drop(c.extensions()),
        &|c| drop(c.options()),
        &|c| drop(c.deregister_extension(7)),
        &|c| {
            let info = InternalExtensionInfo {
                name: Some("seed".into()),
                version: Some("1".into()),
                sdk_version: Some(crate::SDK_VERSION.into()),
                min_sdk_version: Some(crate::SDK_VERSION.into()),
            };
            let routes = vec![ExtensionPluginRequest::from([
                ("id".to_owned(), "column".to_owned()),
                ("name".to_owned(), "n".to_owned()),
                ("type".to_owned(), "INTEGER".to_owned()),
            ])];
            let reg = ExtensionRegistry::from([(
                "table".to_owned(),
                [("seed_table".to_owned(), routes)].into(),
            )]);
            drop(c.register_extension(info, reg));
        },
        &|c| {
            let req = ExtensionPluginRequest::from([
                ("action".to_owned(), "generate".to_owned()),
                (
                    "context".to_owned(),
                    r#"{"constraints":[],"colsUsed":[]}"#.to_owned(),
                ),
            ]);
            drop(c.call("table".into(), "processes".into(), req));
        },
    ];
    calls
        .iter()
        .map(|call| {
            let out = Shared::default();
            let mut c = ExtensionManagerSyncClient::new(
                TBinaryInputProtocol::new(Cursor::new(Vec::new()), true),
                TBinaryOutputProtocol::new(out.clone(), true),
            );
            call(&mut c);
            out.0.lock().map(|b| b.clone()).unwrap_or_default()
        })
        .collect()
}

/// Replies to `call` as an extension writes them: an empty answer, and one with rows (seeds of
/// the reply target).
pub fn reply_seeds() -> Vec<Vec<u8>> {
    use crate::osquery::ExtensionSyncProcessor;

    struct Rows(usize);
    impl ExtensionSyncHandler for Rows {
        fn handle_ping(&self) -> thrift::Result<ExtensionStatus> {
            Ok(ExtensionStatus::default())
        }
        fn handle_call(
            &self,
            _: String,
            _: String,
            _: ExtensionPluginRequest,
        ) -> thrift::Result<ExtensionResponse> {
            let row = |i: usize| {
                ExtensionPluginRequest::from([
                    ("n".to_owned(), i.to_string()),
                    ("word".to_owned(), "x".repeat(i)),
                ])
            };
            Ok(ExtensionResponse {
                status: Some(ExtensionStatus {
                    code: Some(0),
                    message: Some("OK".into()),
                    uuid: None,
                }),
                response: Some((0..self.0).map(row).collect()),
            })
        }
        fn handle_shutdown(&self) -> thrift::Result<()> {
            Ok(())
        }
    }
    [0, 3]
        .into_iter()
        .map(|n| {
            // The request as the manager writes it, answered by the processor.
            let request = Shared::default();
            let mut c = ExtensionSyncClient::new(
                TBinaryInputProtocol::new(Cursor::new(Vec::new()), true),
                TBinaryOutputProtocol::new(request.clone(), true),
            );
            drop(c.call("table".into(), "t".into(), ExtensionPluginRequest::new()));
            let bytes = request.0.lock().map(|b| b.clone()).unwrap_or_default();
            let reply = Shared::default();
            let mut i = TBinaryInputProtocol::new(Cursor::new(bytes), true);
            let mut o = TBinaryOutputProtocol::new(reply.clone(), true);
            drop(ExtensionSyncProcessor::new(Rows(n)).process(&mut i, &mut o));
            reply.0.lock().map(|b| b.clone()).unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (xorshift64): the same mutations every run.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn every_seed_is_one_whole_request() {
        let seeds = seeds();
        assert_eq!(seeds.len(), 8);
        for s in &seeds {
            assert_eq!(manager_request(s), 1, "{s:?}");
        }
        assert_eq!(manager_request(&seeds.concat()), 8);
        for r in reply_seeds() {
            assert!(extension_reply(&r), "{r:?}");
        }
    }

    #[test]
    fn mutated_requests_and_replies_never_panic() {
        let seeds = [seeds(), reply_seeds()].concat();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for round in 0..100_000 {
            let mut v = seeds[round % seeds.len()].clone();
            for _ in 0..=(rng.next() % 4) {
                let at = (rng.next() as usize) % v.len().max(1);
                match rng.next() % 4 {
                    0 if !v.is_empty() => v[at] = rng.next() as u8,
                    1 => v.insert(at.min(v.len()), rng.next() as u8),
                    2 if !v.is_empty() => drop(v.remove(at)),
                    // A length field's high byte: the sizes a liar sends.
                    _ if at + 4 <= v.len() => {
                        v[at..at + 4].copy_from_slice(&(rng.next() as i32).to_be_bytes())
                    }
                    _ => {}
                }
            }
            manager_request(&v);
            extension_reply(&v);
            context(&v);
        }
    }
}
