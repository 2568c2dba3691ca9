//! Leader election on a `coordination.k8s.io/v1` Lease, the way client-go's leaderelection
//! does it.
//!
//! Every replica runs an [`Elector`]. The holder renews the Lease every retry period; the
//! others watch it and take it over once its record (holder and renew time) has not changed
//! for a whole lease duration *as measured on their own clock* (so clock skew between nodes
//! does not matter). A holder that could not renew for the renew deadline (shorter than the
//! lease duration) steps down before anyone else may take over. Writes carry the Lease's
//! `resourceVersion`, so two replicas racing for it cannot both win.
//!
//! A Lease alone does not stop a paused ex-leader from acting on stale leadership: whatever it
//! guards must also be fenced (the monitor does it with a transactional producer's epoch).

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{Error, Result};

/// Where the Lease is and how it is held.
#[derive(Clone, Debug, clap::Args)]
pub struct LeaseArgs {
    /// Name of the Lease (default: the binary's name).
    #[arg(long, env = "LEASE_NAME")]
    pub lease_name: Option<String>,
    /// Namespace of the Lease (default: the client's namespace, the pod's own in a cluster).
    #[arg(long, env = "LEASE_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// This replica's identity in the Lease (default: host name plus a random suffix).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// How long a Lease holds without renewal, in milliseconds.
    #[arg(long, env = "LEASE_DURATION_MS", default_value_t = 15_000)]
    pub lease_duration_ms: u64,
    /// A leader that could not renew for this long (milliseconds) steps down; less than the
    /// lease duration.
    #[arg(long, env = "LEASE_RENEW_DEADLINE_MS", default_value_t = 10_000)]
    pub lease_renew_deadline_ms: u64,
    /// How often the Lease is renewed or tried, in milliseconds.
    #[arg(long, env = "LEASE_RETRY_PERIOD_MS", default_value_t = 2_000)]
    pub lease_retry_period_ms: u64,
}

/// Whether this replica leads, and for how many changes of leadership it has (a new term
/// starts with every acquisition).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Leadership {
    /// This replica holds the Lease.
    pub leader: bool,
    /// Counts this replica's terms: a new value means a new term.
    pub term: u64,
}

/// What the Lease record says, as the decision needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// `holderIdentity` (`None` or empty: released).
    pub holder: Option<String>,
    /// `renewTime`, as text (only its changes matter).
    pub renew_time: Option<String>,
    /// `leaseDurationSeconds`.
    pub duration: Duration,
}

/// What to do with the Lease now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// We hold it: write a new renew time.
    Renew,
    /// Nobody holds it, or its holder stopped renewing: take it.
    TakeOver,
    /// Someone else holds it.
    Follow,
}

/// The decision for `record`, seen unchanged for `unchanged_for` on our clock.
pub fn decide(record: &Record, me: &str, unchanged_for: Duration) -> Decision {
    match record.holder.as_deref() {
        Some(holder) if holder == me => Decision::Renew,
        None | Some("") => Decision::TakeOver,
        Some(_) if unchanged_for >= record.duration => Decision::TakeOver,
        Some(_) => Decision::Follow,
    }
}

/// Runs the election for one replica.
pub struct Elector {
    api: Api<Lease>,
    name: String,
    identity: String,
    duration: Duration,
    renew_deadline: Duration,
    retry_period: Duration,
}

impl Elector {
    /// An elector for the Lease `args` name (`default_name` when it names none).
    pub fn new(client: &kube::Client, args: &LeaseArgs, default_name: &str) -> Self {
        let namespace = args
            .lease_namespace
            .clone()
            .unwrap_or_else(|| client.default_namespace().to_owned());
        let identity = args.identity.clone().unwrap_or_else(|| {
            let host = hostname::get().map_or_else(
                |_| "replica".to_owned(),
                |h| h.to_string_lossy().into_owned(),
            );
            format!("{host}-{:08x}", rand::random::<u32>())
        });
        Self {
            api: Api::namespaced(client.clone(), &namespace),
            name: args
                .lease_name
                .clone()
                .unwrap_or_else(|| default_name.to_owned()),
            identity,
            duration: Duration::from_millis(args.lease_duration_ms),
            renew_deadline: Duration::from_millis(args.lease_renew_deadline_ms),
            retry_period: Duration::from_millis(args.lease_retry_period_ms),
        }
    }

    /// This replica's identity in the Lease.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Starts the election loop; the receiver follows this replica's [`Leadership`]. On
    /// cancellation a leader releases the Lease (so a successor need not wait it out).
    pub fn spawn(self, token: CancellationToken) -> (watch::Receiver<Leadership>, JoinHandle<()>) {
        let (tx, rx) = watch::channel(Leadership::default());
        let task = tokio::spawn(async move { self.run(tx, token).await });
        (rx, task)
    }

    async fn run(self, tx: watch::Sender<Leadership>, token: CancellationToken) {
        let mut seen: Option<(Record, Instant)> = None;
        let mut last_renewal: Option<Instant> = None;
        let mut term = 0;
        loop {
            match self.try_hold(&mut seen).await {
                Ok(true) => {
                    last_renewal = Some(Instant::now());
                    if !tx.borrow().leader {
                        term += 1;
                        tracing::info!(identity = %self.identity, lease = %self.name, "Became the leader.");
                        tx.send_replace(Leadership { leader: true, term });
                    }
                }
                Ok(false) => {
                    if tx.borrow().leader {
                        tracing::warn!(identity = %self.identity, lease = %self.name, "Lost the Lease to another replica.");
                        tx.send_replace(Leadership {
                            leader: false,
                            term,
                        });
                    }
                    last_renewal = None;
                }
                Err(error) => {
                    tracing::warn!(%error, lease = %self.name, "Could not read or renew the Lease.");
                    let overdue = last_renewal.is_some_and(|t| t.elapsed() >= self.renew_deadline);
                    if tx.borrow().leader && overdue {
                        tracing::warn!(identity = %self.identity, "Renew deadline passed: stepping down.");
                        tx.send_replace(Leadership {
                            leader: false,
                            term,
                        });
                        last_renewal = None;
                    }
                }
            }
            tokio::select! {
                () = token.cancelled() => break,
                () = tokio::time::sleep(self.retry_period) => {}
            }
        }
        if tx.borrow().leader {
            tx.send_replace(Leadership {
                leader: false,
                term,
            });
            if let Err(error) = self.release().await {
                tracing::warn!(%error, "Could not release the Lease on shutdown.");
            }
        }
    }

    /// One round: returns whether we hold the Lease afterwards.
    async fn try_hold(&self, seen: &mut Option<(Record, Instant)>) -> Result<bool> {
        let now = MicroTime(Timestamp::now());
        let Some(mut lease) = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(Error::api(format!("reading Lease {}", self.name)))?
        else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..Default::default()
                },
                spec: Some(self.spec(now.clone(), now, 0)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(e) if crate::status_code(&e) == Some(409) => Ok(false),
                Err(e) => Err(Error::api(format!("creating Lease {}", self.name))(e)),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let record = Record {
            holder: spec.holder_identity.clone(),
            renew_time: spec.renew_time.as_ref().map(|t| t.0.to_string()),
            duration: Duration::from_secs(
                spec.lease_duration_seconds
                    .and_then(|s| u64::try_from(s).ok())
                    .unwrap_or(self.duration.as_secs()),
            ),
        };
        let unchanged_for = match seen {
            Some((previous, since)) if *previous == record => since.elapsed(),
            _ => {
                *seen = Some((record.clone(), Instant::now()));
                Duration::ZERO
            }
        };
        let transitions = spec.lease_transitions.unwrap_or(0);
        lease.spec = Some(match decide(&record, &self.identity, unchanged_for) {
            Decision::Follow => return Ok(false),
            Decision::Renew => self.spec(
                spec.acquire_time.clone().unwrap_or_else(|| now.clone()),
                now,
                transitions,
            ),
            Decision::TakeOver => self.spec(now.clone(), now, transitions + 1),
        });
        // The write carries the resourceVersion we read: if anyone wrote since, it fails
        // with 409 and we lost this round.
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if crate::status_code(&e) == Some(409) => Ok(false),
            Err(e) => Err(Error::api(format!("renewing Lease {}", self.name))(e)),
        }
    }

    fn spec(&self, acquired: MicroTime, renewed: MicroTime, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            // The API field is whole seconds; the in-process deadlines keep milliseconds.
            lease_duration_seconds: Some(
                i32::try_from(self.duration.as_secs().max(1)).unwrap_or(i32::MAX),
            ),
            acquire_time: Some(acquired),
            renew_time: Some(renewed),
            lease_transitions: Some(transitions),
            ..Default::default()
        }
    }

    /// Gives the Lease up (clears the holder) if we still hold it.
    async fn release(&self) -> Result<()> {
        let Some(mut lease) = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(Error::api("reading the Lease"))?
        else {
            return Ok(());
        };
        let Some(spec) = lease.spec.as_mut() else {
            return Ok(());
        };
        if spec.holder_identity.as_deref() != Some(&self.identity) {
            return Ok(());
        }
        spec.holder_identity = None;
        self.api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
            .map_err(Error::api("releasing the Lease"))?;
        tracing::info!(identity = %self.identity, "Released the Lease.");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held_by(holder: Option<&str>) -> Record {
        Record {
            holder: holder.map(str::to_owned),
            renew_time: Some("2026-12-02T08:00:00Z".into()),
            duration: Duration::from_secs(15),
        }
    }

    #[test]
    fn the_holder_renews() {
        assert_eq!(
            decide(&held_by(Some("a")), "a", Duration::from_secs(60)),
            Decision::Renew
        );
    }

    #[test]
    fn a_released_lease_is_taken_at_once() {
        assert_eq!(
            decide(&held_by(None), "a", Duration::ZERO),
            Decision::TakeOver
        );
        assert_eq!(
            decide(&held_by(Some("")), "a", Duration::ZERO),
            Decision::TakeOver
        );
    }

    #[test]
    fn another_holder_is_followed_until_its_record_stood_still_a_whole_duration() {
        let record = held_by(Some("b"));
        assert_eq!(
            decide(&record, "a", Duration::from_millis(14_999)),
            Decision::Follow
        );
        assert_eq!(
            decide(&record, "a", Duration::from_secs(15)),
            Decision::TakeOver
        );
    }
}
