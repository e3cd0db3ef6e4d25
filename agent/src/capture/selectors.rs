//! The maps that say who is captured — the config array (flags, proxy
//! addresses, depth), ports, destinations, process names, uids. Filled at attach and
//! updated in place on a config reload, in an order that never captures
//! less than the new selection while it changes: new entries first, then
//! the flags and the epoch (no remembered "not selected" from before the
//! change holds after it), then stale entries out.

use std::collections::HashSet;
use std::net::SocketAddr;

use airlock_ebpf::{AddrKey, flags, maps};
use aya::Ebpf;
use aya::maps::{Array, HashMap, MapData};

use super::table::addr_key;
use super::{CaptureError, Targets, take_map as take};
use crate::config::CaptureConfig;

/// Which changes of a process's selectors the kernel reports to the
/// programs (and so, for which selections "not selected" may be
/// remembered).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Remember {
    Nothing,
    /// Renames and exec: selections by name only.
    Names,
    /// Renames, exec and credential changes (fexit on `commit_creds`).
    NamesAndUids,
}

impl Remember {
    fn covers(self, config: &CaptureConfig) -> bool {
        match self {
            Remember::Nothing => false,
            Remember::Names => config.uid.is_empty(),
            Remember::NamesAndUids => true,
        }
    }
}

pub(crate) struct Selectors {
    config: Array<MapData, airlock_ebpf::Config>,
    ports: HashMap<MapData, u16, u8>,
    /// Destinations captured whatever their port (`capture.imds`).
    dests: HashMap<MapData, AddrKey, u8>,
    comms: HashMap<MapData, [u8; 16], u8>,
    uids: HashMap<MapData, u32, u8>,
    /// Moves when the selection changes: what the programs remembered
    /// about unselected processes is stamped with it.
    epoch: Array<MapData, u64>,
    /// Which changes the kernel reports, and so which selections the
    /// programs may remember verdicts under.
    remember: Remember,
    targets: Targets,
    current: Option<CaptureConfig>,
}

impl std::fmt::Debug for Selectors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Selectors")
            .field("current", &self.current)
            .finish_non_exhaustive()
    }
}

fn map_err(map: &'static str) -> impl Fn(aya::maps::MapError) -> CaptureError {
    move |source| CaptureError::Map { map, source }
}

/// Puts every key of `wanted` in the set map `map` (named `name`).
fn add_all<K: aya::Pod + Eq + std::hash::Hash>(
    map: &mut HashMap<MapData, K, u8>,
    wanted: &HashSet<K>,
    name: &'static str,
) -> Result<(), CaptureError> {
    for k in wanted {
        map.insert(k, 1, 0).map_err(map_err(name))?;
    }
    Ok(())
}

/// Takes every key that is not in `wanted` out of the set map `map`.
fn remove_stale<K: aya::Pod + Eq + std::hash::Hash>(
    map: &mut HashMap<MapData, K, u8>,
    wanted: &HashSet<K>,
    name: &'static str,
) -> Result<(), CaptureError> {
    let stale: Vec<K> = map
        .keys()
        .filter_map(Result::ok)
        .filter(|k| !wanted.contains(k))
        .collect();
    for k in stale {
        map.remove(&k).map_err(map_err(name))?;
    }
    Ok(())
}

impl Selectors {
    /// Takes the selection maps out of the loaded object (before its
    /// programs load: they keep referring to the same kernel maps).
    pub(super) fn take(ebpf: &mut Ebpf, targets: Targets) -> Result<Self, CaptureError> {
        Ok(Self {
            config: Array::try_from(take(ebpf, maps::CONFIG)?).map_err(map_err(maps::CONFIG))?,
            ports: HashMap::try_from(take(ebpf, maps::PORTS)?).map_err(map_err(maps::PORTS))?,
            dests: HashMap::try_from(take(ebpf, maps::DESTS)?).map_err(map_err(maps::DESTS))?,
            comms: HashMap::try_from(take(ebpf, maps::COMMS)?).map_err(map_err(maps::COMMS))?,
            uids: HashMap::try_from(take(ebpf, maps::UIDS)?).map_err(map_err(maps::UIDS))?,
            epoch: Array::try_from(take(ebpf, maps::EPOCH)?).map_err(map_err(maps::EPOCH))?,
            remember: Remember::Nothing,
            targets,
            current: None,
        })
    }

    /// Makes the kernel select by `config` (its comm, uid, ports, imds,
    /// follow_children and follow_depth).
    pub(crate) fn apply(&mut self, config: &CaptureConfig) -> Result<(), CaptureError> {
        let comm_key = |c: &String| {
            let mut key = [0u8; 16];
            key[..c.len()].copy_from_slice(c.as_bytes());
            key
        };
        let new_ports: HashSet<u16> = config.captured_ports().collect();
        let new_dests: HashSet<AddrKey> = config.imds.iter().map(|a| addr_key(*a)).collect();
        let new_comms: HashSet<[u8; 16]> = config.comm.iter().map(comm_key).collect();
        let new_uids: HashSet<u32> = config.uid.iter().copied().collect();
        add_all(&mut self.ports, &new_ports, maps::PORTS)?;
        add_all(&mut self.dests, &new_dests, maps::DESTS)?;
        add_all(&mut self.comms, &new_comms, maps::COMMS)?;
        add_all(&mut self.uids, &new_uids, maps::UIDS)?;
        self.config
            .set(0, self.kernel_config(config), 0)
            .map_err(map_err(maps::CONFIG))?;
        // Verdicts remembered before the new entries are void from here;
        // removing stale ones below can only select fewer. Not atomic with
        // the programs' increments: one lost here still leaves a value no
        // earlier verdict carries.
        let epoch = self.epoch.get(&0, 0).map_err(map_err(maps::EPOCH))?;
        self.epoch
            .set(0, epoch.wrapping_add(1 << 32), 0)
            .map_err(map_err(maps::EPOCH))?;
        remove_stale(&mut self.ports, &new_ports, maps::PORTS)?;
        remove_stale(&mut self.dests, &new_dests, maps::DESTS)?;
        remove_stale(&mut self.comms, &new_comms, maps::COMMS)?;
        remove_stale(&mut self.uids, &new_uids, maps::UIDS)?;
        self.current = Some(config.clone());
        Ok(())
    }

    /// Lets the programs remember "not selected" where the hooks that void
    /// it are attached.
    pub(super) fn remember_verdicts(&mut self, remember: Remember) -> Result<(), CaptureError> {
        self.remember = remember;
        match self.current.clone() {
            Some(config) => self.apply(&config),
            None => Ok(()),
        }
    }

    /// The selection in force.
    pub(crate) fn current(&self) -> Option<&CaptureConfig> {
        self.current.as_ref()
    }

    fn kernel_config(&self, config: &CaptureConfig) -> airlock_ebpf::Config {
        let mut bits = 0;
        if !config.comm.is_empty() {
            bits |= flags::FILTER_COMM;
        }
        if !config.uid.is_empty() {
            bits |= flags::FILTER_UID;
        }
        if config.follow_children {
            bits |= flags::FOLLOW_CHILDREN;
            if self.remember.covers(config) {
                bits |= flags::REMEMBER;
            }
        }
        let (proxy_ip6, proxy_port6) = match self.targets.listen6 {
            Some(SocketAddr::V6(a)) => {
                bits |= flags::HAVE_V6;
                (a.ip().octets(), a.port())
            }
            _ => ([0; 16], 0),
        };
        let proxy_ip4 = match self.targets.listen4 {
            SocketAddr::V4(a) => a.ip().octets(),
            SocketAddr::V6(_) => [0; 4],
        };
        let (containers_ip4, containers_port4) = match self.targets.containers {
            Some(SocketAddr::V4(a)) => (a.ip().octets(), a.port()),
            _ => ([0; 4], 0),
        };
        airlock_ebpf::Config {
            self_tgid: self.targets.self_tgid,
            flags: bits,
            proxy_ip4,
            proxy_ip6,
            proxy_port4: self.targets.listen4.port(),
            proxy_port6,
            max_depth: config.follow_depth,
            containers_ip4,
            containers_port4,
            _pad: 0,
            _pad2: 0,
            host_netns: self.targets.host_netns,
        }
    }
}
