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

/// airlock's application id: what the host's machine id is hashed with.
const APP_ID: [u8; 16] = [
    0x49, 0x31, 0x50, 0x33, 0x70, 0x79, 0x44, 0xd1, 0x9c, 0xc4, 0xa5, 0x6f, 0x5c, 0x18, 0x26, 0xf4,
];

/// `origin`, as every record carries it.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Origin {
    pub(crate) host: String,
    /// This host's machine id as airlock's own ([`app_specific`]), where
    /// the host has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) machine_id: Option<String>,
    pub(crate) trail: TrailId,
}

/// The machine id (32 hex digits, as `/etc/machine-id` holds it) as an
/// application-specific id, exactly as systemd's
/// `sd_id128_get_machine_app_specific` makes it (`systemd-id128
/// machine-id --app-specific=49315033707944d19cc4a56f5c1826f4` prints the
/// same): HMAC-SHA256 keyed with the machine id over airlock's app id, its
/// first 16 bytes marked as a version-4 UUID. machine-id(5) asks that the
/// id itself never leave the host; this one is as stable and names the
/// host only to those who know the machine id.
fn app_specific(machine_id: &str) -> Option<String> {
    let raw: Vec<u8> = (0..machine_id.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(machine_id.get(i..i + 2)?, 16).ok())
        .collect::<Option<_>>()?;
    if raw.len() != 16 {
        return None;
    }
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &raw);
    let tag = ring::hmac::sign(&key, &APP_ID);
    let mut id = [0u8; 16];
    id.copy_from_slice(&tag.as_ref()[..16]);
    id[6] = (id[6] & 0x0f) | 0x40;
    id[8] = (id[8] & 0x3f) | 0x80;
    Some(crate::core::hex(&id))
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
            machine_id: read("/etc/machine-id").and_then(|m| app_specific(&m)),
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
    fn the_machine_id_is_recorded_as_systemds_app_specific_id() {
        // What `systemd-id128 machine-id --app-specific=4931…26f4` printed
        // on a host whose /etc/machine-id is 3d12…fda4 (systemd 252).
        assert_eq!(
            app_specific("3d1219c7c4c5404aaa1f6d2a48adfda4").as_deref(),
            Some("c2b54e7e46044bf993e649f8b89ba0da")
        );
        for bad in ["", "3d12", "zz1219c7c4c5404aaa1f6d2a48adfda4", "é"] {
            assert_eq!(app_specific(bad), None, "{bad:?}");
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
