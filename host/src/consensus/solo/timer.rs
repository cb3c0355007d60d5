//! The batch timer as Fabric's solo keeps it: started when a batch begins pending,
//! kept (not restarted) while messages stay pending, stopped when nothing is. Pure:
//! time is the caller's (a monotonic offset), so tests drive it with a fake clock.

use std::time::Duration;

#[derive(Clone, Debug)]
pub struct BatchTimer {
    timeout: Duration,
    deadline: Option<Duration>,
    /// When the pending batch began: its block's fill time (blockcutter metrics).
    started: Option<Duration>,
}

impl BatchTimer {
    pub fn new(timeout: Duration) -> Self {
        BatchTimer {
            timeout,
            deadline: None,
            started: None,
        }
    }

    /// After a message was ordered (or a batch moved in): whether messages pend.
    pub fn ordered(&mut self, pending: bool, now: Duration) {
        match (pending, self.deadline) {
            (false, _) => (self.deadline, self.started) = (None, None),
            (true, None) => (self.deadline, self.started) = (Some(now + self.timeout), Some(now)),
            (true, Some(_)) => {}
        }
    }

    /// Nothing pends any more (a cut, a config block, a reopened cutter).
    pub fn stop(&mut self) {
        (self.deadline, self.started) = (None, None);
    }

    /// When the pending batch began, if one pends.
    pub fn started(&self) -> Option<Duration> {
        self.started
    }

    /// The channel's BatchTimeout changed; a running deadline keeps its time.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    pub fn deadline(&self) -> Option<Duration> {
        self.deadline
    }

    pub fn expired(&self, now: Duration) -> bool {
        self.deadline.is_some_and(|d| now >= d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn starts_with_the_first_pending_message_and_keeps_its_deadline() {
        let mut timer = BatchTimer::new(2 * S);
        assert_eq!(timer.deadline(), None);
        timer.ordered(true, S);
        assert_eq!(timer.deadline(), Some(3 * S));
        timer.ordered(true, 2 * S);
        assert_eq!(
            timer.deadline(),
            Some(3 * S),
            "not restarted by later messages"
        );
        assert!(!timer.expired(3 * S - Duration::from_nanos(1)));
        assert!(timer.expired(3 * S));
    }

    #[test]
    fn stops_when_nothing_pends() {
        let mut timer = BatchTimer::new(2 * S);
        timer.ordered(true, S);
        timer.ordered(false, 2 * S);
        assert_eq!(timer.deadline(), None);
        assert!(!timer.expired(100 * S));
        timer.ordered(true, 5 * S);
        assert_eq!(
            timer.deadline(),
            Some(7 * S),
            "a new batch starts a new timer"
        );
        timer.stop();
        assert_eq!(timer.deadline(), None);
    }

    #[test]
    fn a_new_timeout_applies_to_the_next_batch() {
        let mut timer = BatchTimer::new(2 * S);
        timer.ordered(true, S);
        timer.set_timeout(5 * S);
        assert_eq!(timer.deadline(), Some(3 * S));
        timer.stop();
        timer.ordered(true, 10 * S);
        assert_eq!(timer.deadline(), Some(15 * S));
    }
}
