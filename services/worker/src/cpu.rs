//! CPU time spent by one replica. A replica is one tokio task; every poll
//! of it runs to completion on a single thread, so the thread's CPU clock
//! read before and after each poll measures exactly the replica's own work
//! (decoding, encoding, inserting). librdkafka's network threads are not
//! included; they show in the worker process's total.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

/// CPU nanoseconds the calling thread has used.
fn thread_cpu_nanos() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes only into the timespec we pass.
    let failed = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) } != 0;
    if failed {
        return 0;
    }
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

/// Wraps a future and adds the CPU time of its polls to `total`.
pub struct CpuMeasured<F> {
    inner: Pin<Box<F>>,
    total: Arc<AtomicU64>,
}

impl<F: Future> CpuMeasured<F> {
    pub fn new(inner: F, total: Arc<AtomicU64>) -> Self {
        CpuMeasured {
            inner: Box::pin(inner),
            total,
        }
    }
}

impl<F: Future> Future for CpuMeasured<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let before = thread_cpu_nanos();
        let outcome = self.inner.as_mut().poll(cx);
        let spent = thread_cpu_nanos().saturating_sub(before);
        self.total.fetch_add(spent, Ordering::Relaxed);
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_the_work_done_inside_polls_only() {
        let total = Arc::new(AtomicU64::new(0));
        let busy = CpuMeasured::new(
            async {
                let started = thread_cpu_nanos();
                let mut x = 0u64;
                while thread_cpu_nanos() - started < 50_000_000 {
                    x = x.wrapping_add(std::hint::black_box(1));
                }
                // Sleeping is not CPU.
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                x
            },
            total.clone(),
        );
        busy.await;
        let spent = total.load(Ordering::Relaxed);
        assert!(spent >= 50_000_000, "busy for 50 ms, measured {spent} ns");
        assert!(spent < 90_000_000, "slept 100 ms, measured {spent} ns");
    }
}
