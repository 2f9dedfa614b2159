//! Event sources: one folder each, registered by one line in [`REGISTRY`].
//!
//! A source owns everything of its event type: the kernel records it asks for and the
//! options it sets on the loader ([`Source::configure`]), its publisher thread (ring →
//! decode → queue, [`Source::start`]), its subscriber (event → stored row) and the SQL table
//! it feeds ([`crate::sql::TableProvider`]). The storage column families, `EVENT_TABLES`-like
//! lists, the `osquery_events` rows, the kernel drop labels and the daemon's wiring are all
//! derived from [`REGISTRY`].
//!
//! Adding a kernel event type: a probe file in agent-ebpf, a record type in agent-common, a
//! folder here implementing [`Source`], one line in [`REGISTRY`], its test.

pub mod file;
pub mod process;
mod ring;
pub mod socket;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use agent_common::EventKind;
use anyhow::Result;

use crate::{
    fim::FimState,
    flags::Flags,
    pipeline::{Queue, Subscriber},
    rt::{
        Watch,
        counters::{PublisherCounters, SubscriberCounters},
        supervise::{Supervised, Supervisor},
    },
    sql::TableProvider,
    sys::{
        ebpf::{Kernel, LoadOptions},
        fsguard::FsGuard,
    },
};

/// Every event source, in the order the daemon wires them.
pub static REGISTRY: &[&dyn Source] = &[&process::SOURCE, &file::SOURCE, &socket::SOURCE];

/// What a source decides from: the effective flags and the FIM state in force.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    pub flags: &'a Flags,
    pub fim: &'a Watch<FimState>,
    /// Where subscribers run file-system calls that may hang.
    pub fs: &'a FsGuard,
}

/// What a source's publisher is started with.
pub struct Wiring<'a> {
    /// None when no enabled source needs the kernel programs.
    pub kernel: Option<&'a mut Kernel>,
    pub queue: Queue,
    pub counters: Arc<PublisherCounters>,
    pub supervisor: &'a Supervisor,
}

impl Wiring<'_> {
    /// The loaded kernel programs, for a source whose [`Source::kinds`] are not empty.
    pub fn kernel(&mut self) -> Result<&mut Kernel> {
        self.kernel
            .as_deref_mut()
            .ok_or_else(|| anyhow::anyhow!("the kernel programs are not loaded"))
    }
}

pub trait Source: TableProvider + Sync {
    /// The publisher's name in `osquery_events` and `event_drops`, e.g. `ebpf_process`.
    fn publisher(&self) -> &'static str;
    /// The event table (and column family) its subscriber fills.
    fn table(&self) -> &'static str;
    /// The kernel record kinds it needs; the first names its hook strategy.
    fn kinds(&self) -> &'static [EventKind];
    /// The `event_type` of a kernel drop counter of one of [`Source::kinds`].
    fn drop_event_type(&self, kind: EventKind) -> &'static str;
    /// Whether it runs with these flags and this FIM state.
    fn enabled(&self, ctx: Ctx<'_>) -> bool;
    /// Sets its part of the loader's options.
    fn configure(&self, _ctx: Ctx<'_>, _opts: &mut LoadOptions) -> Result<()> {
        Ok(())
    }
    /// Takes its ring from the loaded kernel and starts its publisher thread.
    fn start(&self, w: Wiring<'_>) -> Result<Supervised>;
    /// Its subscriber, counting into `counters`.
    fn subscriber(&self, ctx: Ctx<'_>, counters: Arc<SubscriberCounters>) -> Box<dyn Subscriber>;
    /// The hook its fallback shows in `osquery_events` when the kernel programs are not used
    /// (`--event_source`); None: it has no fallback and stays off then.
    fn fallback(&self) -> Option<&'static str> {
        None
    }
    /// Starts its fallback publisher (no kernel programs).
    fn start_fallback(&self, _ctx: Ctx<'_>, _w: Wiring<'_>) -> Result<Supervised> {
        anyhow::bail!("{} has no fallback", self.publisher())
    }
    /// After a config reload: re-programs its kernel filter.
    fn reconfigure(&self, _kernel: &mut Kernel, _ctx: Ctx<'_>) -> Result<()> {
        Ok(())
    }
}

/// The event tables of `sources`, in registry order: their column families.
pub fn event_tables(sources: &[&dyn Source]) -> Vec<&'static str> {
    sources.iter().map(|s| s.table()).collect()
}

/// The SQL tables of every registered source.
pub fn tables() -> impl Iterator<Item = &'static dyn TableProvider> {
    REGISTRY.iter().map(|s| *s as &'static dyn TableProvider)
}

/// The tables of `sources` (the daemon's own list; tests pass theirs).
pub fn tables_of(sources: &[&'static dyn Source]) -> Vec<&'static dyn TableProvider> {
    sources
        .iter()
        .map(|s| *s as &'static dyn TableProvider)
        .collect()
}

/// The source that owns kernel records of `kind`.
pub fn owner<'a>(sources: &[&'a dyn Source], kind: EventKind) -> Option<&'a dyn Source> {
    sources.iter().copied().find(|s| s.kinds().contains(&kind))
}

/// The loader's options for the enabled `sources`, each adding its part.
pub fn load_options(sources: &[&dyn Source], ctx: Ctx<'_>) -> Result<LoadOptions> {
    let mut opts = LoadOptions {
        ring_buffer_bytes: u32::try_from(ctx.flags.ring_buffer_bytes())
            .map_err(|_| anyhow::anyhow!("--ring_buffer_bytes is too large"))?,
        hooks: ctx
            .flags
            .get("ebpf_hooks")
            .parse()
            .map_err(|e: String| anyhow::anyhow!(e))?,
        log_level: crate::sys::ebpf::klog::level_from_flag(ctx.flags.ebpf_log_level())?,
        ..LoadOptions::default()
    };
    for s in sources {
        opts.enabled.extend_from_slice(s.kinds());
        s.configure(ctx, &mut opts)?;
    }
    Ok(opts)
}
