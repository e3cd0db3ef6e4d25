//! Readers that copy the trail elsewhere (the fleet's shipper, the syslog
//! exporter) hold back retention: a rotated file is removed only once
//! every one of them is past its last record, so the slowest decides.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::core::lock;

/// Every hold taken on one trail.
#[derive(Clone, Debug, Default)]
pub(crate) struct Holds(Arc<Mutex<Vec<Arc<AtomicU64>>>>);

impl Holds {
    /// A new hold, at 0: nothing may go until its reader says so.
    pub(crate) fn take(&self) -> RetentionHold {
        let seq = Arc::new(AtomicU64::new(0));
        lock(&self.0).push(seq.clone());
        RetentionHold(seq)
    }

    /// The last seq every reader is past; everything with no reader.
    pub(crate) fn through(&self) -> u64 {
        lock(&self.0)
            .iter()
            .map(|s| s.load(Ordering::Acquire))
            .min()
            .unwrap_or(u64::MAX)
    }
}

/// One reader's progress: records through it may be removed.
#[derive(Debug)]
pub(crate) struct RetentionHold(Arc<AtomicU64>);

impl RetentionHold {
    pub(crate) fn release_through(&self, seq: u64) {
        self.0.store(seq, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slowest_reader_decides() {
        let holds = Holds::default();
        assert_eq!(holds.through(), u64::MAX, "no reader holds anything");
        let (fleet, syslog) = (holds.take(), holds.take());
        assert_eq!(holds.through(), 0);
        fleet.release_through(90);
        syslog.release_through(40);
        assert_eq!(holds.through(), 40);
        syslog.release_through(120);
        assert_eq!(holds.through(), 90);
    }
}
