//! A client's side of the phase's cancellation token, checked at the cost
//! of an atomic swap per wake-up.
//!
//! `CancellationToken::cancelled()` locks the token's mutex on every poll
//! (tokio-util 0.7: `WaitForCancellationFuture::poll` calls
//! `is_cancelled`), and racing it against each next message made that one
//! lock per delivery: 1.7–2.8% of a 2,000-subscriber WebSocket run's CPU
//! (`benches/profile.sh`), and a per-client child token did not help (the
//! lock, not its contention, is the cost). Here the token's future is
//! polled only when its own waker fired.

use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use futures_util::task::AtomicWaker;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// How a raced future ended.
pub enum Wake<T> {
    /// The token was cancelled first.
    Cancelled,
    /// The future finished first.
    Ready(T),
}

/// One client's watch on a cancellation token.
pub struct ClientCancel {
    wait: Pin<Box<WaitForCancellationFutureOwned>>,
    flag: Arc<Flag>,
    /// A waker of `flag`, made once.
    waker: Waker,
}

/// Set when the token's future was woken; wakes the client's task.
struct Flag {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl std::task::Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

impl ClientCancel {
    /// Watches `token`.
    pub fn new(token: CancellationToken) -> ClientCancel {
        let flag = Arc::new(Flag {
            // Polled at the first race, which registers its waker.
            woken: AtomicBool::new(true),
            task: AtomicWaker::new(),
        });
        ClientCancel {
            wait: Box::pin(token.cancelled_owned()),
            waker: Waker::from(flag.clone()),
            flag,
        }
    }

    /// Runs `fut` unless the token is cancelled first (cancellation wins
    /// when both are ready).
    pub async fn or_cancel<T>(&mut self, fut: impl Future<Output = T>) -> Wake<T> {
        let mut fut = pin!(fut);
        std::future::poll_fn(|cx| {
            // Registered before the flag is read: a cancellation between
            // the two still wakes this task.
            self.flag.task.register(cx.waker());
            if self.flag.woken.swap(false, Ordering::AcqRel) {
                let mut own = Context::from_waker(&self.waker);
                if self.wait.as_mut().poll(&mut own).is_ready() {
                    // Cancelled for good: every later race ends at once.
                    self.flag.woken.store(true, Ordering::Release);
                    return Poll::Ready(Wake::Cancelled);
                }
            }
            fut.as_mut().poll(cx).map(Wake::Ready)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_cancellation_ends_a_pending_race_and_every_later_one() {
        let token = CancellationToken::new();
        let mut c = ClientCancel::new(token.clone());
        assert!(matches!(c.or_cancel(async { 7 }).await, Wake::Ready(7)));
        let t = token.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            t.cancel();
        });
        let never = std::future::pending::<()>();
        assert!(matches!(c.or_cancel(never).await, Wake::Cancelled));
        assert!(matches!(c.or_cancel(async { 1 }).await, Wake::Cancelled));
    }

    #[tokio::test]
    async fn a_token_cancelled_before_the_first_race_wins_it() {
        let token = CancellationToken::new();
        token.cancel();
        let mut c = ClientCancel::new(token);
        assert!(matches!(c.or_cancel(async { 1 }).await, Wake::Cancelled));
    }
}
