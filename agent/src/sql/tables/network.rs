//! `interface_addresses`, `interface_details` and `routes`, with osquery's Linux columns:
//! what Fleet's network-interface detail query joins.

use std::path::Path;

use crate::{
    sql::{
        tables::util::{int, text},
        vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col, hidden},
    },
    sys::net,
};

const ADDRESS_COLUMNS: &[Column] = &[
    col("interface", Text),
    col("address", Text),
    col("mask", Text),
    col("broadcast", Text),
    col("point_to_point", Text),
    col("type", Text),
    hidden("friendly_name", Text),
];

#[derive(Debug)]
pub struct InterfaceAddresses;

impl Table for InterfaceAddresses {
    fn name(&self) -> &'static str {
        "interface_addresses"
    }
    fn columns(&self) -> &'static [Column] {
        ADDRESS_COLUMNS
    }
    fn generate(&self, _ctx: &QueryContext) -> Result<Rows, String> {
        let opt = |a: Option<std::net::IpAddr>| text(a.map(|a| a.to_string()).unwrap_or_default());
        let rows: Vec<_> = net::addresses()
            .into_iter()
            .map(|a| {
                Ok(vec![
                    text(a.interface),
                    text(a.address.to_string()),
                    opt(a.mask),
                    opt(a.broadcast),
                    opt(a.point_to_point),
                    // osquery's Linux value: the address's origin (dhcp, manual) is Windows-only.
                    text("unknown"),
                    text(""),
                ])
            })
            .collect();
        Ok(Box::new(rows.into_iter()))
    }
}

const DETAIL_COLUMNS: &[Column] = &[
    col("interface", Text),
    col("mac", Text),
    col("type", Integer),
    col("mtu", Integer),
    col("metric", Integer),
    col("flags", Integer),
    col("ipackets", BigInt),
    col("opackets", BigInt),
    col("ibytes", BigInt),
    col("obytes", BigInt),
    col("ierrors", BigInt),
    col("oerrors", BigInt),
    col("idrops", BigInt),
    col("odrops", BigInt),
    col("collisions", BigInt),
    col("last_change", BigInt),
    col("link_speed", BigInt),
    col("pci_slot", Text),
];

#[derive(Debug)]
pub struct InterfaceDetails;

impl Table for InterfaceDetails {
    fn name(&self) -> &'static str {
        "interface_details"
    }
    fn columns(&self) -> &'static [Column] {
        DETAIL_COLUMNS
    }
    fn generate(&self, _ctx: &QueryContext) -> Result<Rows, String> {
        let rows: Vec<_> = net::links(Path::new("/sys/class/net"))
            .into_iter()
            .map(|l| {
                let mut r = vec![
                    text(l.name),
                    text(l.mac),
                    int(l.kind),
                    int(l.mtu),
                    int(0),
                    int(l.flags),
                ];
                r.extend(l.stats.iter().map(|s| int(*s)));
                // The kernel keeps no time of the last change that user space can read.
                r.push(int(-1));
                r.push(int(l.speed));
                r.push(text(l.pci_slot));
                Ok(r)
            })
            .collect();
        Ok(Box::new(rows.into_iter()))
    }
}

const ROUTE_COLUMNS: &[Column] = &[
    col("destination", Text),
    col("netmask", Integer),
    col("gateway", Text),
    col("source", Text),
    col("flags", Integer),
    col("interface", Text),
    col("mtu", Integer),
    col("metric", Integer),
    col("type", Text),
    col("hopcount", Integer),
];

#[derive(Debug)]
pub struct Routes;

impl Table for Routes {
    fn name(&self) -> &'static str {
        "routes"
    }
    fn columns(&self) -> &'static [Column] {
        ROUTE_COLUMNS
    }
    fn generate(&self, _ctx: &QueryContext) -> Result<Rows, String> {
        let rows: Vec<_> = net::routes()
            .into_iter()
            .map(|r| {
                let via = r.flags & net::RTF_GATEWAY != 0;
                Ok(vec![
                    text(r.destination.to_string()),
                    int(i64::from(r.netmask)),
                    text(if via {
                        r.gateway.to_string()
                    } else {
                        String::new()
                    }),
                    text(""),
                    int(r.flags),
                    text(r.interface),
                    int(r.mtu),
                    int(r.metric),
                    text(if via {
                        "gateway"
                    } else if r.flags & net::RTF_LOCAL != 0 {
                        "local"
                    } else {
                        "other"
                    }),
                    int(0),
                ])
            })
            .collect();
        Ok(Box::new(rows.into_iter()))
    }
}
