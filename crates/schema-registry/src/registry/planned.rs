//! New ids planned by this replica's claims in flight, per schema identity: one schema
//! registered under two subjects at once is planned with one id, and an entry lives only while
//! a claim that uses it is in flight (the map does not grow with every registration).

use std::collections::HashMap;

/// Planned ids and how many claims in flight use each.
#[derive(Debug, Default)]
pub(crate) struct Planned {
    by_identity: HashMap<String, (u32, usize)>,
}

impl Planned {
    /// The id a new claim of `identity` uses: the one planned by a claim still in flight when
    /// that id is not taken by another schema (`taken_by` names the identity holding an id in
    /// the state, if any), else `proposed`. Each call must be matched by [`Planned::done`].
    pub(crate) fn plan(
        &mut self,
        identity: String,
        proposed: u32,
        taken_by: impl Fn(u32) -> Option<String>,
    ) -> u32 {
        match self.by_identity.get_mut(&identity) {
            Some((id, users)) if taken_by(*id).is_none_or(|other| other == identity) => {
                *users += 1;
                *id
            }
            _ => {
                let users = self.by_identity.get(&identity).map_or(0, |(_, u)| *u);
                self.by_identity.insert(identity, (proposed, users + 1));
                proposed
            }
        }
    }

    /// A claim of `identity` is settled (won, lost or failed).
    pub(crate) fn done(&mut self, identity: &str) {
        if let Some((_, users)) = self.by_identity.get_mut(identity) {
            *users -= 1;
            if *users == 0 {
                self.by_identity.remove(identity);
            }
        }
    }

    /// Identities with a claim in flight.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.by_identity.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_claims_share_an_id_and_settled_ones_are_forgotten() {
        let mut planned = Planned::default();
        let free = |_: u32| None;
        assert_eq!(planned.plan("a".into(), 7, free), 7);
        // The same schema under another subject, while the first claim is in flight.
        assert_eq!(planned.plan("a".into(), 8, free), 7);
        assert_eq!(planned.plan("b".into(), 9, free), 9);
        planned.done("a");
        assert_eq!(planned.len(), 2, "one claim of a is still in flight");
        planned.done("a");
        planned.done("b");
        assert_eq!(planned.len(), 0, "nothing kept once every claim is settled");
        for i in 0..1000 {
            let identity = format!("s{i}");
            planned.plan(identity.clone(), i, free);
            planned.done(&identity);
        }
        assert_eq!(planned.len(), 0);
    }

    #[test]
    fn an_id_another_schema_took_is_not_reused() {
        let mut planned = Planned::default();
        assert_eq!(planned.plan("a".into(), 7, |_| None), 7);
        assert_eq!(planned.plan("a".into(), 8, |_| Some("other".into())), 8);
        planned.done("a");
        planned.done("a");
        assert_eq!(planned.len(), 0);
    }
}
