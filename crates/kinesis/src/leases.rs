//! Which shards a replica should hold, in the manner of Amazon's Kinesis
//! Client Library: every shard of the stream has one lease; a shard is
//! read only once its parents are finished, so per partition key the order
//! survives splits and merges; replicas share the readable shards evenly,
//! taking free ones first and stealing one at a time from the most loaded
//! replica when that is the only way to even out.
//!
//! Pure: the store feeds it the leases it read, the replica applies the
//! plan with conditional updates (a lease changes hands only if its counter
//! is still the one seen here), so two replicas acting on the same view
//! cannot both win a shard.

use std::collections::{BTreeMap, BTreeSet};

/// A shard lease as read from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardLease {
    pub shard_id: String,
    pub parents: Vec<String>,
    /// The replica holding it, if that replica is alive under the epoch the
    /// lease was taken with; a dead owner's lease reads as free.
    pub owner: Option<i32>,
    /// Bumped on every change of owner: the condition of the next change.
    pub counter: i64,
    /// Read to its end and checkpointed at SHARD_END.
    pub finished: bool,
}

/// What one replica should do about its leases now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Free readable shards to take, with the counter seen.
    pub take: Vec<(String, i64)>,
    /// A readable shard to take from a replica that holds more than its
    /// share, with the counter seen.
    pub steal: Option<(String, i64)>,
}

/// Readable: not finished, and every parent that has a lease is finished.
/// A parent without a lease is past the stream's retention, so there is
/// nothing left to wait for.
pub fn readable(lease: &ShardLease, by_id: &BTreeMap<&str, &ShardLease>) -> bool {
    !lease.finished
        && lease
            .parents
            .iter()
            .all(|parent| by_id.get(parent.as_str()).is_none_or(|p| p.finished))
}

/// The plan for replica `me` among the `live` replicas (which include
/// `me`).
pub fn plan(leases: &[ShardLease], live: &BTreeSet<i32>, me: i32) -> Plan {
    let by_id: BTreeMap<&str, &ShardLease> =
        leases.iter().map(|l| (l.shard_id.as_str(), l)).collect();
    let readable: Vec<&ShardLease> = leases.iter().filter(|l| readable(l, &by_id)).collect();
    if readable.is_empty() || live.is_empty() {
        return Plan::default();
    }
    let replicas = live.len().max(1);
    // Every replica gets `floor`; the first `extra` replicas by number get
    // one more, so the targets add up to the shard count exactly and the
    // replicas agree on them without talking.
    let floor = readable.len() / replicas;
    let extra = readable.len() % replicas;
    let target_of = |replica: i32| {
        let rank = live.iter().position(|r| *r == replica).unwrap_or(replicas);
        floor + usize::from(rank < extra)
    };

    let mut held: BTreeMap<i32, Vec<&ShardLease>> = BTreeMap::new();
    let mut free = Vec::new();
    for lease in &readable {
        match lease.owner.filter(|o| live.contains(o)) {
            Some(owner) => held.entry(owner).or_default().push(lease),
            None => free.push(*lease),
        }
    }
    let mine = held.get(&me).map_or(0, Vec::len);
    let target = target_of(me);
    if mine >= target {
        return Plan::default();
    }
    let wanted = target - mine;
    let take: Vec<(String, i64)> = free
        .iter()
        .take(wanted)
        .map(|l| (l.shard_id.clone(), l.counter))
        .collect();
    let mut plan = Plan { steal: None, take };
    if plan.take.len() < wanted {
        // Steal from the replica furthest above its own target; one per
        // round, so a rebalance moves shards one by one.
        let victim = held
            .iter()
            .filter(|(owner, _)| **owner != me)
            .map(|(owner, leases)| (leases.len() as i64 - target_of(*owner) as i64, *owner))
            .filter(|(surplus, _)| *surplus > 0)
            .max();
        if let Some((_, owner)) = victim {
            if let Some(lease) = held[&owner].last() {
                plan.steal = Some((lease.shard_id.clone(), lease.counter));
            }
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lease(id: &str, parents: &[&str], owner: Option<i32>, finished: bool) -> ShardLease {
        ShardLease {
            shard_id: id.into(),
            parents: parents.iter().map(|p| p.to_string()).collect(),
            owner,
            counter: 0,
            finished,
        }
    }

    fn live(replicas: &[i32]) -> BTreeSet<i32> {
        replicas.iter().copied().collect()
    }

    #[test]
    fn a_child_waits_for_its_parents() {
        let leases = vec![
            lease("p", &[], None, false),
            lease("c1", &["p"], None, false),
            lease("c2", &["p"], None, false),
        ];
        assert_eq!(
            plan(&leases, &live(&[0]), 0).take,
            vec![("p".to_string(), 0)]
        );
        let mut done = leases.clone();
        done[0].finished = true;
        let taken: Vec<String> = plan(&done, &live(&[0]), 0)
            .take
            .into_iter()
            .map(|t| t.0)
            .collect();
        assert_eq!(taken, vec!["c1", "c2"]);
    }

    #[test]
    fn a_merged_child_waits_for_both_parents() {
        let mut leases = vec![
            lease("a", &[], None, true),
            lease("b", &[], Some(1), false),
            lease("ab", &["a", "b"], None, false),
        ];
        assert!(plan(&leases, &live(&[0, 1]), 0).take.is_empty());
        leases[1].finished = true;
        assert_eq!(plan(&leases, &live(&[0, 1]), 0).take.len(), 1);
    }

    #[test]
    fn a_parent_past_retention_does_not_block() {
        let leases = vec![lease("c", &["gone"], None, false)];
        assert_eq!(plan(&leases, &live(&[0]), 0).take.len(), 1);
    }

    #[test]
    fn a_dead_owners_shards_are_free() {
        let leases = vec![lease("s", &[], Some(7), false)];
        assert_eq!(plan(&leases, &live(&[0]), 0).take.len(), 1);
    }

    #[test]
    fn steals_one_from_the_most_loaded() {
        let leases: Vec<ShardLease> = (0..4)
            .map(|i| lease(&format!("s{i}"), &[], Some(0), false))
            .collect();
        let p = plan(&leases, &live(&[0, 1]), 1);
        assert!(p.take.is_empty());
        assert!(p.steal.is_some());
        // The loaded replica itself does nothing.
        assert_eq!(plan(&leases, &live(&[0, 1]), 0), Plan::default());
    }

    /// Applies every replica's plan in turn until nothing changes, as the
    /// replicas would over a few rounds.
    fn converge(mut leases: Vec<ShardLease>, replicas: &BTreeSet<i32>) -> Vec<ShardLease> {
        for _round in 0..200 {
            let mut changed = false;
            for &me in replicas {
                let p = plan(&leases, replicas, me);
                for (id, counter) in p.take.iter().chain(p.steal.iter()) {
                    let l = leases.iter_mut().find(|l| &l.shard_id == id).unwrap();
                    if l.counter == *counter {
                        l.owner = Some(me);
                        l.counter += 1;
                        changed = true;
                    }
                }
            }
            if !changed {
                return leases;
            }
        }
        panic!("no convergence: {leases:?}");
    }

    proptest! {
        #[test]
        fn replicas_converge_to_an_even_share_of_readable_shards(
            shards in 1usize..40,
            replicas in 1usize..6,
            owners in proptest::collection::vec(proptest::option::of(0i32..8), 40),
            finished in proptest::collection::vec(any::<bool>(), 40),
            split_every in 2usize..6,
        ) {
            // A family of shards: some children of earlier ones.
            let leases: Vec<ShardLease> = (0..shards)
                .map(|i| {
                    let parents: Vec<String> = if i >= split_every && i % split_every == 0 {
                        vec![format!("s{}", i / split_every)]
                    } else {
                        vec![]
                    };
                    ShardLease {
                        shard_id: format!("s{i}"),
                        parents,
                        owner: owners[i],
                        counter: 0,
                        finished: finished[i],
                    }
                })
                .collect();
            let live: BTreeSet<i32> = (0..replicas as i32).collect();
            let result = converge(leases.clone(), &live);
            let by_id: BTreeMap<&str, &ShardLease> =
                result.iter().map(|l| (l.shard_id.as_str(), l)).collect();
            let open: Vec<&ShardLease> =
                result.iter().filter(|l| readable(l, &by_id)).collect();
            // Every readable shard has a live owner.
            for l in &open {
                prop_assert!(l.owner.is_some_and(|o| live.contains(&o)), "{l:?} unowned");
            }
            // Shares differ by at most one.
            let counts: Vec<usize> = live
                .iter()
                .map(|r| open.iter().filter(|l| l.owner == Some(*r)).count())
                .collect();
            let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
            prop_assert!(max - min <= 1, "{counts:?}");
            // A shard whose parents are not finished is never taken by
            // the plan (a previous owner may still hold it).
            for l in &result {
                if !readable(l, &by_id) && !l.finished {
                    let original = &leases[l.shard_id[1..].parse::<usize>().unwrap()];
                    prop_assert_eq!(l.owner, original.owner);
                }
            }
        }
    }
}
