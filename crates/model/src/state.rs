//! The pipe lifecycle. The API applies user commands, the data plane reports
//! observations, and both go through these two functions so that the rules
//! live in one place and are tested exhaustively.
//!
//! ```text
//!            start                     replicas ready
//!  Stopped ─────────► Provisioning ───────────────────► Running ◄──┐
//!    ▲                  │      │                          │        │ ready
//!    │ replicas         │fatal │unhealthy        unhealthy│        │
//!    │ stopped          ▼      ▼                          ▼        │
//!  Stopping ◄──stop── Failed  Degraded ◄─────────────────────────┘
//!    ▲  (stop from Provisioning, Running, Degraded or Failed)
//!  start from Failed goes back to Provisioning; delete from Stopped removes
//!  the pipe at once, from anywhere else it passes through Deleting.
//! ```

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum PipeState {
    Provisioning,
    Running,
    Degraded,
    Stopping,
    Stopped,
    Failed,
    Deleting,
}

/// What the user asked for, derived from the state rather than stored beside
/// it so the two can never disagree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DesiredState {
    Running,
    Stopped,
    Deleted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Command {
    Start,
    Stop,
    Delete,
}

/// What the data plane (scheduler and workers) reports about a pipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observation {
    /// Every desired replica is assigned and healthy.
    ReplicasReady,
    /// At least one replica is retrying or missing.
    ReplicasUnhealthy,
    /// The pipe cannot make progress without the user (bad credentials,
    /// missing table, ...).
    Fatal,
    /// No replica of the pipe runs any more.
    ReplicasStopped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    To(PipeState),
    /// The pipe row is removed.
    Remove,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot {command:?} a pipe that is {state:?}")]
pub struct InvalidTransition {
    pub state: PipeState,
    pub command: Command,
}

impl PipeState {
    pub const ALL: [PipeState; 7] = [
        Self::Provisioning,
        Self::Running,
        Self::Degraded,
        Self::Stopping,
        Self::Stopped,
        Self::Failed,
        Self::Deleting,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provisioning => "Provisioning",
            Self::Running => "Running",
            Self::Degraded => "Degraded",
            Self::Stopping => "Stopping",
            Self::Stopped => "Stopped",
            Self::Failed => "Failed",
            Self::Deleting => "Deleting",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == s)
    }

    pub fn desired(self) -> DesiredState {
        match self {
            Self::Provisioning | Self::Running | Self::Degraded | Self::Failed => {
                DesiredState::Running
            }
            Self::Stopping | Self::Stopped => DesiredState::Stopped,
            Self::Deleting => DesiredState::Deleted,
        }
    }

    /// States in which replicas may be running and a stop makes sense.
    /// Failed is included: a failed pipe can always be stopped.
    pub fn is_live(self) -> bool {
        matches!(
            self,
            Self::Provisioning | Self::Running | Self::Degraded | Self::Failed
        )
    }

    /// Everything but a pipe on its way out can be edited; in particular a
    /// Failed pipe, so a user can fix what made it fail.
    pub fn is_editable(self) -> bool {
        self != Self::Deleting
    }

    pub fn apply(self, command: Command) -> Result<Transition, InvalidTransition> {
        use PipeState::*;
        let invalid = Err(InvalidTransition {
            state: self,
            command,
        });
        match command {
            Command::Start => match self {
                Stopped | Failed => Ok(Transition::To(Provisioning)),
                _ => invalid,
            },
            Command::Stop => match self {
                s if s.is_live() => Ok(Transition::To(Stopping)),
                _ => invalid,
            },
            Command::Delete => match self {
                Stopped => Ok(Transition::Remove),
                _ => Ok(Transition::To(Deleting)),
            },
        }
    }

    /// `None` means the observation is stale for this state (a replica
    /// reporting ready while the pipe is stopping, say) and is ignored.
    pub fn observe(self, observation: Observation) -> Option<Transition> {
        use Observation::*;
        use PipeState::*;
        match (observation, self) {
            (ReplicasReady, Provisioning | Degraded) => Some(Transition::To(Running)),
            (ReplicasUnhealthy, Provisioning | Running) => Some(Transition::To(Degraded)),
            (Fatal, Provisioning | Running | Degraded) => Some(Transition::To(Failed)),
            (ReplicasStopped, Stopping) => Some(Transition::To(Stopped)),
            (ReplicasStopped, Deleting) => Some(Transition::Remove),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Command::*;
    use super::Observation::*;
    use super::PipeState::*;
    use super::*;
    use proptest::prelude::*;

    const COMMANDS: [Command; 3] = [Start, Stop, Delete];
    const OBSERVATIONS: [Observation; 4] =
        [ReplicasReady, ReplicasUnhealthy, Fatal, ReplicasStopped];

    fn to(s: PipeState) -> Option<Transition> {
        Some(Transition::To(s))
    }

    /// The whole command table, written out: every state times every command.
    #[test]
    fn every_command_in_every_state() {
        let remove = Some(Transition::Remove);
        let table: [(PipeState, [Option<Transition>; 3]); 7] = [
            //              Start               Stop            Delete
            (Provisioning, [None, to(Stopping), to(Deleting)]),
            (Running, [None, to(Stopping), to(Deleting)]),
            (Degraded, [None, to(Stopping), to(Deleting)]),
            (Stopping, [None, None, to(Deleting)]),
            (Stopped, [to(Provisioning), None, remove]),
            (Failed, [to(Provisioning), to(Stopping), to(Deleting)]),
            (Deleting, [None, None, to(Deleting)]),
        ];
        for (state, expected) in table {
            for (command, expected) in COMMANDS.into_iter().zip(expected) {
                let got = state.apply(command);
                match expected {
                    Some(t) => assert_eq!(got, Ok(t), "{state:?} {command:?}"),
                    None => assert_eq!(
                        got,
                        Err(InvalidTransition { state, command }),
                        "{state:?} {command:?}"
                    ),
                }
            }
        }
    }

    /// The whole observation table: every state times every observation.
    #[test]
    fn every_observation_in_every_state() {
        let remove = Some(Transition::Remove);
        let table: [(PipeState, [Option<Transition>; 4]); 7] = [
            //              Ready          Unhealthy       Fatal        Stopped
            (Provisioning, [to(Running), to(Degraded), to(Failed), None]),
            (Running, [None, to(Degraded), to(Failed), None]),
            (Degraded, [to(Running), None, to(Failed), None]),
            (Stopping, [None, None, None, to(Stopped)]),
            (Stopped, [None, None, None, None]),
            (Failed, [None, None, None, None]),
            (Deleting, [None, None, None, remove]),
        ];
        for (state, expected) in table {
            for (observation, expected) in OBSERVATIONS.into_iter().zip(expected) {
                assert_eq!(
                    state.observe(observation),
                    expected,
                    "{state:?} {observation:?}"
                );
            }
        }
    }

    #[test]
    fn failed_pipes_are_never_a_dead_end() {
        assert!(Failed.is_editable());
        for command in COMMANDS {
            assert!(Failed.apply(command).is_ok(), "{command:?}");
        }
    }

    #[test]
    fn names_round_trip() {
        for state in PipeState::ALL {
            assert_eq!(PipeState::parse(state.as_str()), Some(state));
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{}\"", state.as_str()));
        }
        assert_eq!(PipeState::parse("running"), None);
    }

    #[test]
    fn desired_state_follows_the_last_command() {
        for state in PipeState::ALL {
            for command in COMMANDS {
                if let Ok(Transition::To(next)) = state.apply(command) {
                    let expected = match command {
                        Start => DesiredState::Running,
                        Stop => DesiredState::Stopped,
                        Delete => DesiredState::Deleted,
                    };
                    assert_eq!(next.desired(), expected, "{state:?} {command:?}");
                }
            }
        }
    }

    #[derive(Debug, Clone, Copy)]
    enum Event {
        Command(Command),
        Observation(Observation),
    }

    fn event() -> impl Strategy<Value = Event> {
        prop_oneof![
            proptest::sample::select(COMMANDS.to_vec()).prop_map(Event::Command),
            proptest::sample::select(OBSERVATIONS.to_vec()).prop_map(Event::Observation),
        ]
    }

    proptest! {
        /// Whatever happens, a pipe can always be brought to removal by the
        /// user's delete and the data plane confirming its replicas stopped,
        /// and only the data plane's observations move it out of Stopping.
        #[test]
        fn any_history_can_end_in_removal(events in proptest::collection::vec(event(), 0..64)) {
            let mut state = Stopped;
            let mut removed = false;
            for event in events {
                if removed { break; }
                let next = match event {
                    Event::Command(c) => state.apply(c).ok(),
                    Event::Observation(o) => state.observe(o),
                };
                if state == Stopping {
                    if let (Event::Command(c), Some(Transition::To(next))) = (event, next) {
                        prop_assert!(c == Delete && next == Deleting);
                    }
                }
                match next {
                    Some(Transition::To(s)) => state = s,
                    Some(Transition::Remove) => removed = true,
                    None => {}
                }
            }
            if !removed {
                let after_delete = state.apply(Delete).unwrap();
                let removed_now = match after_delete {
                    Transition::Remove => true,
                    Transition::To(s) => s.observe(ReplicasStopped) == Some(Transition::Remove),
                };
                prop_assert!(removed_now);
            }
        }
    }
}
