//! One active scheduler at a time, against a real Postgres.

use sluice_store::{Cipher, Store};
use sluice_testkit::TestDatabase;

#[tokio::test]
async fn one_leader_at_a_time_and_the_lock_is_released_on_drop() {
    let db = TestDatabase::create().await;
    let a = Store::from_pool(db.pool().await, Cipher::from_key(&[1; 32]));
    let b = Store::from_pool(db.pool().await, Cipher::from_key(&[1; 32]));

    let mut lead = a
        .try_lead_scheduler()
        .await
        .unwrap()
        .expect("first one leads");
    assert!(
        b.try_lead_scheduler().await.unwrap().is_none(),
        "second one stands by"
    );
    assert!(
        a.try_lead_scheduler().await.unwrap().is_none(),
        "even from the leader's own pool"
    );
    lead.confirm().await.unwrap();

    drop(lead);
    // The session closes asynchronously on the server: give it a moment.
    let mut taken = None;
    for _ in 0..50 {
        taken = b.try_lead_scheduler().await.unwrap();
        if taken.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        taken.is_some(),
        "the standby takes over once the leader lets go"
    );
}
