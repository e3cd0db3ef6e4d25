//! Where a record comes from, written into every record's envelope so a
//! record still says it once copied off its host (a fleet store, a SIEM):
//! `schema` (the record format's version) and `origin` {`host`,
//! `machine_id`, `trail`}. `trail` names one hash chain: made at random
//! when a chain starts at seq 1, read back from the newest record when
//! airlock resumes its chain, so an ephemeral runner that reuses a host name
//! (and a machine id baked into its image) still starts a trail of its own.

use serde::Serialize;

/// The record format's version: bumped on an incompatible change
/// (`docs/audit.md` lists what each version changed). 1: the lean trail
/// (`session` records; a response record says only what is new) with
/// `origin`. Records without `schema` predate it.
pub(crate) const SCHEMA: u32 = 1;

/// One hash chain's random id: 128 bits, hex.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub(crate) struct TrailId(String);

impl TrailId {
    /// A new trail's id.
    pub(crate) fn new() -> Self {
        let mut b = [0u8; 16];
        // The kernel's CSPRNG; it does not fail on Linux once booted.
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
            .expect("the system's random number generator works");
        Self(crate::core::hex(&b))
    }

    /// An id read back from a record, if it is one airlock could have made.
    pub(crate) fn parse(s: &str) -> Option<Self> {
        (s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())).then(|| Self(s.to_owned()))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

/// `origin`, as every record carries it.
#[derive(Debug, Serialize)]
pub(crate) struct Origin {
    pub(crate) host: String,
    /// `/etc/machine-id`, where the host has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) machine_id: Option<String>,
    pub(crate) trail: TrailId,
}

impl Origin {
    /// This host's, for the trail `trail`.
    pub(crate) fn here(trail: TrailId) -> Self {
        let read = |p: &str| {
            std::fs::read_to_string(p)
                .ok()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
        };
        Self {
            host: host_name().unwrap_or_else(|| "unknown".into()),
            machine_id: read("/etc/machine-id"),
            trail,
        }
    }

    /// The members every record's envelope carries after `seq` and `prev`:
    /// `"schema":…,"origin":{…}`, serialised once for the trail's life.
    pub(crate) fn envelope(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct Envelope<'a> {
            schema: u32,
            origin: &'a Origin,
        }
        let whole = serde_json::to_vec(&Envelope {
            schema: SCHEMA,
            origin: self,
        })
        .expect("strings serialise");
        // The object's members, without its braces.
        whole[1..whole.len() - 1].to_vec()
    }
}

/// This host's name (its UTS name, as `hostname` prints it).
pub(crate) fn host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trail_ids_are_random_and_read_back_only_when_well_formed() {
        let (a, b) = (TrailId::new(), TrailId::new());
        assert_ne!(a, b);
        assert_eq!(TrailId::parse(a.as_str()), Some(a));
        for bad in ["", "abc", "zz000000000000000000000000000000", "\"}"] {
            assert_eq!(TrailId::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_envelope_is_the_members_of_one_object() {
        let o = Origin {
            host: "runner-\"7\"".into(),
            machine_id: None,
            trail: TrailId("0".repeat(32)),
        };
        let members = String::from_utf8(o.envelope()).unwrap();
        let v: serde_json::Value = serde_json::from_str(&format!("{{{members}}}")).unwrap();
        assert_eq!(v["schema"], SCHEMA);
        assert_eq!(v["origin"]["host"], "runner-\"7\"");
        assert_eq!(v["origin"]["trail"], "0".repeat(32));
        assert!(v["origin"].get("machine_id").is_none());
    }
}
