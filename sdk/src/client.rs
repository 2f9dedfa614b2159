//! A Thrift connection over a [`transport::Stream`](crate::transport::Stream) (a UNIX socket,
//! or a named pipe on Windows): the strict binary protocol on buffered transports,
//! replies read through [`Bounded`](crate::wire::Bounded), every read and write limited by a
//! timeout. One connection serves one caller at a time; after an error (a timeout included)
//! the stream may be anywhere inside a message, so it is dropped, never reused.

use std::{path::Path, time::Duration};

use thrift::{
    protocol::{TBinaryInputProtocol, TBinaryOutputProtocol},
    transport::{TBufferedReadTransport, TBufferedWriteTransport},
};

use crate::{
    osquery::{ExtensionManagerSyncClient, ExtensionSyncClient},
    transport::{self, Stream},
    wire,
};

/// The input side of a connection: answers read bounded.
pub type In = wire::Bounded<TBinaryInputProtocol<TBufferedReadTransport<Stream>>>;
/// The output side of a connection.
pub type Out = TBinaryOutputProtocol<TBufferedWriteTransport<Stream>>;
/// A client of an extension (`ping`, `call`, `shutdown`).
pub type Extension = ExtensionSyncClient<In, Out>;
/// A client of a manager (an extension's calls and the manager's own).
pub type Manager = ExtensionManagerSyncClient<In, Out>;

/// The protocols of a connection to the socket at `path`, every read and write limited to
/// `timeout`, an answer to at most `max` bytes. Err: `<path>: <why>`.
pub fn connect(path: &Path, timeout: Duration, max: usize) -> Result<(In, Out), String> {
    let at = |e: std::io::Error| format!("{}: {e}", path.display());
    let stream = transport::connect(path, timeout).map_err(at)?;
    let reader = stream.try_clone().map_err(at)?;
    Ok(protocols(reader, stream, max))
}

/// The protocols of an accepted or connected stream (`reader` a clone of `writer`).
pub fn protocols(reader: Stream, writer: Stream, max: usize) -> (In, Out) {
    (
        wire::Bounded::new(
            TBinaryInputProtocol::new(TBufferedReadTransport::new(reader), true),
            max,
        ),
        TBinaryOutputProtocol::new(TBufferedWriteTransport::new(writer), true),
    )
}

/// A client of the manager at `path` (answers up to [`wire::REPLY_MAX`]).
pub fn manager(path: &Path, timeout: Duration) -> Result<Manager, String> {
    let (i, o) = connect(path, timeout, wire::REPLY_MAX)?;
    Ok(ExtensionManagerSyncClient::new(i, o))
}

/// A client of the extension at `path` (answers up to [`wire::REPLY_MAX`]).
pub fn extension(path: &Path, timeout: Duration) -> Result<Extension, String> {
    let (i, o) = connect(path, timeout, wire::REPLY_MAX)?;
    Ok(ExtensionSyncClient::new(i, o))
}
