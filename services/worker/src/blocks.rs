//! Exactly-once block planning: where to cut a key's batch so that a block
//! recorded as pending by an earlier owner is rebuilt exactly. Pure, over
//! positions written as decimal numbers, so the rebuild promise is tested
//! without a broker or a database.

use std::cmp::Ordering;

use crate::batch::decimal_cmp;

/// What to do with a key's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Insert them all as one new block.
    Whole,
    /// Insert records `..=index` as one block, keep the rest for later.
    /// `rebuild` when that block is the recorded one.
    Cut { index: usize, rebuild: bool },
    /// The recorded block goes further than what was read: wait.
    Wait,
}

/// `positions` are the key's records in order; `pending` is the recorded
/// block (first, last) of the same generation, if any.
pub fn plan(positions: &[String], pending: Option<(&str, &str)>) -> Plan {
    let (Some(first), Some(last)) = (positions.first(), positions.last()) else {
        return Plan::Whole;
    };
    let Some((pending_first, pending_last)) = pending else {
        return Plan::Whole;
    };
    if decimal_cmp(pending_last, first) == Ordering::Less {
        // Committed already: a leftover.
        return Plan::Whole;
    }
    if decimal_cmp(pending_first, first) == Ordering::Greater {
        // Records before the recorded block go first, on their own.
        return match positions
            .iter()
            .rposition(|p| decimal_cmp(p, pending_first) == Ordering::Less)
        {
            Some(index) => Plan::Cut {
                index,
                rebuild: false,
            },
            None => Plan::Whole,
        };
    }
    if decimal_cmp(last, pending_last) == Ordering::Less {
        return Plan::Wait;
    }
    match positions
        .iter()
        .rposition(|p| decimal_cmp(p, pending_last) != Ordering::Greater)
    {
        Some(index) => Plan::Cut {
            index,
            rebuild: true,
        },
        None => Plan::Whole,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn positions(range: std::ops::Range<u64>) -> Vec<String> {
        range.map(|p| p.to_string()).collect()
    }

    #[test]
    fn cases() {
        let read = positions(10..20);
        assert_eq!(plan(&read, None), Plan::Whole);
        assert_eq!(
            plan(&read, Some(("0", "9"))),
            Plan::Whole,
            "committed leftover"
        );
        assert_eq!(
            plan(&read, Some(("10", "14"))),
            Plan::Cut {
                index: 4,
                rebuild: true
            }
        );
        assert_eq!(plan(&read, Some(("10", "25"))), Plan::Wait);
        assert_eq!(
            plan(&read, Some(("15", "30"))),
            Plan::Cut {
                index: 4,
                rebuild: false
            }
        );
        assert_eq!(
            plan(&read, Some(("10", "19"))),
            Plan::Cut {
                index: 9,
                rebuild: true
            }
        );
        // Kinesis sequence numbers: long, compared as numbers.
        let long = vec!["49590338271490256608559692538361571095921575989136588898".to_owned()];
        assert_eq!(
            plan(&long, Some((&long[0], &long[0]))),
            Plan::Cut {
                index: 0,
                rebuild: true
            }
        );
        assert_eq!(decimal_cmp("9", "10"), Ordering::Less);
    }

    proptest! {
        /// An owner forms a block from `start`, records it, and dies. The
        /// next owner reads from `start` again in batches of any sizes:
        /// its first block is exactly the recorded one, whatever the batch
        /// boundaries, and nothing before or after it is lost or repeated.
        #[test]
        fn the_recorded_block_is_rebuilt_exactly(
            start in 0u64..1000,
            recorded_len in 1u64..200,
            chunks in proptest::collection::vec(1u64..80, 1..40),
        ) {
            let recorded = (start.to_string(), (start + recorded_len - 1).to_string());
            let mut next = start;
            let mut batch: Vec<String> = Vec::new();
            let mut blocks: Vec<(String, String, bool)> = Vec::new();
            let mut pending = Some(recorded.clone());
            for chunk in chunks {
                batch.extend(positions(next..next + chunk));
                next += chunk;
                // A flush: the loop plans, inserts the head, keeps the tail.
                let decision = plan(&batch, pending.as_ref().map(|(f, l)| (f.as_str(), l.as_str())));
                match decision {
                    Plan::Wait => continue,
                    Plan::Whole => {
                        blocks.push((batch[0].clone(), batch[batch.len() - 1].clone(), false));
                        batch.clear();
                    }
                    Plan::Cut { index, rebuild } => {
                        blocks.push((batch[0].clone(), batch[index].clone(), rebuild));
                        batch.drain(..=index);
                        if rebuild {
                            pending = None;
                        }
                    }
                }
            }
            let read_far_enough = next >= start + recorded_len;
            if read_far_enough {
                prop_assert_eq!(&blocks[0], &(recorded.0.clone(), recorded.1.clone(), true));
            } else {
                prop_assert!(blocks.is_empty(), "nothing inserted before the recorded block is complete");
            }
            // The blocks cover what was read once, in order, with no gap.
            let mut expected = start;
            for (first, last, _) in &blocks {
                prop_assert_eq!(first.parse::<u64>().unwrap(), expected);
                expected = last.parse::<u64>().unwrap() + 1;
            }
            prop_assert_eq!(expected + batch.len() as u64, next);
        }
    }
}
