//! The scaling states of an instance (Konsumerator's `estimateDeploy`), as one pure decision
//! per container: given what it has, what the limiters allow, whether it lags and since when it
//! is in its state, what its state becomes and whether the new resources are applied.
//!
//! A wanted change waits in `PENDING_SCALE_UP` (or `PENDING_SCALE_DOWN`) for the pending
//! duration since the state last changed; scale-ups happen only while the instance lags and
//! scale-downs only while it does not; an instance the limiters hold below its estimate is
//! `SATURATED`, the missing milli-cores annotated.
//!
//! Unlike the reference, an instance in `PENDING_SCALE_DOWN` (or of an unknown state) that
//! starts lagging with more wanted moves to `PENDING_SCALE_UP`: the reference has no branch for
//! it and leaves such an instance pending a scale-down for as long as it lags.

use std::cmp::Ordering;
use std::time::Duration;

/// An instance's scaling state (annotation `konsumerator.lwolf.org/scaling-status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// As wanted.
    Running,
    /// Wants more; waits for the pending scale-up duration.
    PendingScaleUp,
    /// Wants less; waits for the pending scale-down duration.
    PendingScaleDown,
    /// Wants more than the limits allow.
    Saturated,
    /// No (known) annotation.
    Unknown,
}

impl State {
    /// The annotation's value.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Running => "RUNNING",
            State::PendingScaleUp => "PENDING_SCALE_UP",
            State::PendingScaleDown => "PENDING_SCALE_DOWN",
            State::Saturated => "SATURATED",
            State::Unknown => "",
        }
    }

    /// From the annotation's value.
    pub fn parse(s: &str) -> Self {
        match s {
            "RUNNING" => State::Running,
            "PENDING_SCALE_UP" => State::PendingScaleUp,
            "PENDING_SCALE_DOWN" => State::PendingScaleDown,
            "SATURATED" => State::Saturated,
            _ => State::Unknown,
        }
    }

    /// `konsumerator_deployment_status`: 1 RUNNING, 2 SATURATED, 3 PENDING_SCALE_UP,
    /// 4 PENDING_SCALE_DOWN, 0 unknown.
    pub fn metric(self) -> i64 {
        match self {
            State::Running => 1,
            State::Saturated => 2,
            State::PendingScaleUp => 3,
            State::PendingScaleDown => 4,
            State::Unknown => 0,
        }
    }
}

/// What the decision sees.
#[derive(Clone, Copy, Debug)]
pub struct Situation {
    /// The state now.
    pub state: State,
    /// Time since the state last changed (`None`: never recorded, counts as long ago).
    pub in_state_for: Option<Duration>,
    /// The instance's largest lag is at least `tolerableLag`.
    pub lagging: bool,
    /// What the limiters allow compared with what it has (`Greater`: more).
    pub wanted: Ordering,
    /// Milli-cores the limiters withhold of the estimate (> 0: saturated).
    pub cpu_shortage: i64,
    /// `pendingScaleUpDuration`.
    pub pending_up: Duration,
    /// `pendingScaleDownDuration`.
    pub pending_down: Duration,
}

/// What becomes of the container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Its new state.
    pub state: State,
    /// Apply the limited resources now.
    pub apply: bool,
    /// The saturation annotation: `Some(milli-cores)` when saturated, `None` to remove it;
    /// `Keep` leaves it as it is.
    pub saturation: Saturation,
}

/// The `konsumerator.lwolf.org/cpu-saturation-level` annotation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Saturation {
    /// Set to these milli-cores.
    Set(i64),
    /// Removed.
    Clear,
    /// Left alone.
    Keep,
}

impl Situation {
    fn waited(&self, period: Duration) -> bool {
        self.in_state_for.is_none_or(|d| d >= period)
    }

    /// Saturated with the shortage, or running without one (the reference's
    /// `updateScaleAnnotations`).
    fn settle(&self, shortage: i64, apply: bool) -> Outcome {
        if shortage > 0 {
            Outcome {
                state: State::Saturated,
                apply,
                saturation: Saturation::Set(shortage),
            }
        } else {
            Outcome {
                state: State::Running,
                apply,
                saturation: Saturation::Clear,
            }
        }
    }

    fn only(&self, state: State) -> Outcome {
        Outcome {
            state,
            apply: false,
            saturation: Saturation::Keep,
        }
    }

    /// The decision.
    pub fn decide(&self) -> Outcome {
        match (self.wanted, self.lagging) {
            (Ordering::Equal, true) => self.settle(self.cpu_shortage, false),
            (Ordering::Equal, false) => self.settle(0, false),
            (Ordering::Greater, true) => match self.state {
                State::PendingScaleUp if self.waited(self.pending_up) => {
                    self.settle(self.cpu_shortage, true)
                }
                State::PendingScaleUp => self.only(State::PendingScaleUp),
                State::Saturated => self.settle(self.cpu_shortage, false),
                State::Running | State::PendingScaleDown | State::Unknown => {
                    self.only(State::PendingScaleUp)
                }
            },
            (Ordering::Greater, false) => match self.state {
                State::Saturated => self.settle(self.cpu_shortage, false),
                _ => self.settle(0, false),
            },
            (Ordering::Less, false) => {
                if self.state == State::PendingScaleDown && self.waited(self.pending_down) {
                    self.settle(self.cpu_shortage, true)
                } else {
                    self.only(State::PendingScaleDown)
                }
            }
            (Ordering::Less, true) => self.settle(self.cpu_shortage, false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UP: Duration = Duration::from_secs(300);
    const DOWN: Duration = Duration::from_secs(900);

    fn at(state: State, for_secs: u64, lagging: bool, wanted: Ordering, shortage: i64) -> Outcome {
        Situation {
            state,
            in_state_for: Some(Duration::from_secs(for_secs)),
            lagging,
            wanted,
            cpu_shortage: shortage,
            pending_up: UP,
            pending_down: DOWN,
        }
        .decide()
    }

    #[test]
    fn a_scale_up_waits_then_applies() {
        let o = at(State::Running, 10, true, Ordering::Greater, 0);
        assert_eq!((o.state, o.apply), (State::PendingScaleUp, false));
        let o = at(State::PendingScaleUp, 299, true, Ordering::Greater, 0);
        assert_eq!((o.state, o.apply), (State::PendingScaleUp, false));
        let o = at(State::PendingScaleUp, 300, true, Ordering::Greater, 0);
        assert_eq!(
            o,
            Outcome {
                state: State::Running,
                apply: true,
                saturation: Saturation::Clear
            }
        );
        // Applied while short of the estimate: saturated, the shortage annotated.
        let o = at(State::PendingScaleUp, 300, true, Ordering::Greater, 700);
        assert_eq!(
            o,
            Outcome {
                state: State::Saturated,
                apply: true,
                saturation: Saturation::Set(700)
            }
        );
    }

    #[test]
    fn no_scale_up_without_lag() {
        let o = at(State::PendingScaleUp, 1000, false, Ordering::Greater, 0);
        assert_eq!((o.state, o.apply), (State::Running, false));
        let o = at(State::Saturated, 1000, false, Ordering::Greater, 200);
        assert_eq!(
            o,
            Outcome {
                state: State::Saturated,
                apply: false,
                saturation: Saturation::Set(200)
            }
        );
    }

    #[test]
    fn a_scale_down_waits_then_applies_only_without_lag() {
        let o = at(State::Running, 5000, false, Ordering::Less, 0);
        assert_eq!(
            (o.state, o.apply),
            (State::PendingScaleDown, false),
            "first the pending state"
        );
        let o = at(State::PendingScaleDown, 899, false, Ordering::Less, 0);
        assert_eq!((o.state, o.apply), (State::PendingScaleDown, false));
        let o = at(State::PendingScaleDown, 900, false, Ordering::Less, 0);
        assert_eq!((o.state, o.apply), (State::Running, true));
        let o = at(State::PendingScaleDown, 900, true, Ordering::Less, 0);
        assert_eq!(
            (o.state, o.apply),
            (State::Running, false),
            "lagging: no scale-down"
        );
    }

    #[test]
    fn equal_settles() {
        assert_eq!(
            at(State::PendingScaleUp, 1, false, Ordering::Equal, 0).state,
            State::Running
        );
        assert_eq!(
            at(State::Running, 1, true, Ordering::Equal, 300).state,
            State::Saturated
        );
        assert!(!at(State::Running, 1, true, Ordering::Equal, 300).apply);
    }

    #[test]
    fn pending_down_then_lagging_moves_to_pending_up() {
        let o = at(State::PendingScaleDown, 10, true, Ordering::Greater, 0);
        assert_eq!((o.state, o.apply), (State::PendingScaleUp, false));
        let o = at(State::Unknown, 10, true, Ordering::Greater, 0);
        assert_eq!(o.state, State::PendingScaleUp);
    }

    #[test]
    fn states_round_trip_their_annotation() {
        for s in [
            State::Running,
            State::PendingScaleUp,
            State::PendingScaleDown,
            State::Saturated,
        ] {
            assert_eq!(State::parse(s.as_str()), s);
        }
        assert_eq!(State::parse("bogus"), State::Unknown);
        assert_eq!(State::Saturated.metric(), 2);
    }
}
