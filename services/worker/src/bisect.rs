//! Finding the records ClickHouse refuses in a rejected block, by halving:
//! a pure state machine, so its promises (every record ends up landed or
//! rejected exactly once, the number of inserts stays bounded) are tested
//! without a server.

use std::ops::Range;

/// The state of one search. The caller asks `next` for a range of record
/// indexes to insert, and reports how it went with `landed` or `refused`.
#[derive(Debug, Clone)]
pub struct Bisection {
    todo: Vec<Range<usize>>,
    budget: usize,
    /// Inserts tried so far, the first (whole) block not counted.
    pub tried: usize,
    pub landed: Vec<Range<usize>>,
    /// Single records refused on their own.
    pub rejected: Vec<usize>,
    /// Ranges still refused when the budget ran out: not isolated further.
    pub unresolved: Vec<Range<usize>>,
}

impl Bisection {
    /// Starts from a whole block of `records` records that was refused.
    /// `budget` bounds the inserts the search may make.
    pub fn new(records: usize, budget: usize) -> Self {
        let mut search = Bisection {
            todo: Vec::new(),
            budget,
            tried: 0,
            landed: Vec::new(),
            rejected: Vec::new(),
            unresolved: Vec::new(),
        };
        search.split(0..records);
        search
    }

    fn split(&mut self, range: Range<usize>) {
        match range.len() {
            0 => {}
            1 => self.rejected.push(range.start),
            n => {
                let middle = range.start + n / 2;
                // Popped from the end: the first half is tried first.
                self.todo.push(middle..range.end);
                self.todo.push(range.start..middle);
            }
        }
    }

    /// The next range to insert; `None` when the search is over.
    pub fn next(&mut self) -> Option<Range<usize>> {
        if self.tried >= self.budget {
            self.unresolved.append(&mut self.todo);
            return None;
        }
        let range = self.todo.pop()?;
        self.tried += 1;
        Some(range)
    }

    pub fn landed(&mut self, range: Range<usize>) {
        self.landed.push(range);
    }

    pub fn refused(&mut self, range: Range<usize>) {
        self.split(range);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn run(records: usize, bad: &BTreeSet<usize>, budget: usize) -> Bisection {
        let mut search = Bisection::new(records, budget);
        while let Some(range) = search.next() {
            if range.clone().any(|i| bad.contains(&i)) {
                search.refused(range);
            } else {
                search.landed(range);
            }
        }
        search
    }

    #[test]
    fn one_bad_record_among_many() {
        let bad = BTreeSet::from([2005]);
        let search = run(50_000, &bad, 10_000);
        assert_eq!(search.rejected, vec![2005]);
        assert!(search.unresolved.is_empty());
        // Two halves per level, about log2(50,000) levels.
        assert!(search.tried <= 2 * 16, "{}", search.tried);
    }

    #[test]
    fn a_single_record_block_is_rejected_without_inserts() {
        let search = run(1, &BTreeSet::from([0]), 10);
        assert_eq!(search.rejected, vec![0]);
        assert_eq!(search.tried, 0);
    }

    proptest! {
        #[test]
        fn every_record_lands_or_is_rejected_exactly_once(
            records in 1usize..400,
            bad in proptest::collection::btree_set(0usize..400, 1..20),
            budget in 0usize..2000,
        ) {
            let bad: BTreeSet<usize> = bad.into_iter().filter(|i| *i < records).collect();
            prop_assume!(!bad.is_empty());
            let search = run(records, &bad, budget);
            let mut seen = vec![0u8; records];
            for range in search.landed.iter().chain(search.unresolved.iter()) {
                for i in range.clone() {
                    seen[i] += 1;
                }
            }
            for &i in &search.rejected {
                seen[i] += 1;
            }
            prop_assert!(seen.iter().all(|&n| n == 1), "{seen:?}");
            prop_assert!(search.tried <= budget);
            // Nothing good is called bad, and nothing bad lands.
            for &i in &search.rejected {
                prop_assert!(bad.contains(&i));
            }
            for range in &search.landed {
                prop_assert!(!range.clone().any(|i| bad.contains(&i)));
            }
            if search.unresolved.is_empty() {
                let rejected: BTreeSet<usize> = search.rejected.iter().copied().collect();
                prop_assert_eq!(rejected, bad.clone());
                // At most two inserts per bad record per level.
                let levels = usize::BITS - records.leading_zeros();
                prop_assert!(search.tried <= 2 * bad.len() * levels as usize);
            }
        }
    }
}
